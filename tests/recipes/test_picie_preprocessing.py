"""picie_training_transforms: images of mixed sizes become one square size in [0, 1]; no mask is ever loaded."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from monai_ssl.recipes import picie_training_transforms


def test_mixed_sizes_become_one_size_and_masks_are_not_read(tmp_path):
    chain = picie_training_transforms(64)
    shapes = []
    for i, size in enumerate([(60, 40), (33, 90)]):
        path = tmp_path / f"ISIC_{i}.jpg"
        Image.new("RGB", size, (255, 0, 128)).save(path)
        item = chain({"image": str(path), "label": str(tmp_path / "missing_mask.png"), "index": i})
        shapes.append(tuple(item["image"].shape))
        assert item["image"].dtype == torch.float32
        assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
        assert item["label"] == str(tmp_path / "missing_mask.png")  # left as a path: never loaded
        assert item["index"] == i
    assert shapes == [(3, 64, 64), (3, 64, 64)]


@pytest.mark.parametrize(("kwargs", "message"), [({"image_size": 32}, "at least 64"),
                                                 ({"image_size": 64, "normalize_red_channel": True}, "normalize_red_channel")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        picie_training_transforms(**kwargs)
