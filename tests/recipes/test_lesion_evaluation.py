"""The evaluation postprocessing shared by evaluate.json, inference.json and the validation inside training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Activationsd, AsDiscreted, EnsureTyped, Invertd, SaveImaged
from PIL import Image

from monai_ssl.recipes import dermoscopy_evaluation_transforms, lesion_postprocessing


@pytest.fixture
def evaluated_item(tmp_path) -> dict:
    """An image of 40x30 (W x H) and its mask through the evaluation chain at working size 16, with a prediction
    of the working size that carries the image's transform record (as the sliding-window inferer returns it)."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "case.png")
    Image.fromarray(np.full((30, 40), 255, dtype=np.uint8)).save(tmp_path / "mask.png")
    preprocessing = dermoscopy_evaluation_transforms(working_size=16)
    item = preprocessing({"image": str(tmp_path / "case.png"), "label": str(tmp_path / "mask.png")})
    logits = torch.zeros(2, 16, 16)
    logits[1, :8] = 5.0  # lesion wins on the first half of the first spatial axis
    pred = MetaTensor(logits)
    pred.copy_meta_from(item["image"])
    return {"preprocessing": preprocessing, "item": {**item, "pred": pred}}


def test_the_prediction_comes_back_as_a_label_map_at_the_original_size(evaluated_item):
    post = lesion_postprocessing(evaluated_item["preprocessing"], device="cpu")
    assert [type(t) for t in post.transforms] == [Activationsd, Invertd, AsDiscreted, EnsureTyped]
    out = post(evaluated_item["item"])
    assert out["pred"].shape == (1, 40, 30) == out["label"].shape
    pred = out["pred"][0]
    assert set(torch.unique(pred).tolist()) == {0.0, 1.0}
    assert pred[:18].eq(1).all() and pred[22:].eq(0).all()  # the half of the first axis, resized back


def test_inference_postprocessing_has_no_label_and_ends_with_the_writer(evaluated_item, tmp_path):
    writer = SaveImaged(keys="pred", output_dir=str(tmp_path / "masks"), output_ext=".png", separate_folder=False,
                        output_dtype=np.uint8, scale=255, resample=False, writer="PILWriter", print_log=False)
    post = lesion_postprocessing(evaluated_item["preprocessing"], labeled=False, writer=writer)
    assert [type(t) for t in post.transforms] == [Activationsd, Invertd, AsDiscreted, SaveImaged]
    item = {k: v for k, v in evaluated_item["item"].items() if k not in ("label", "image_original")}
    post(item)
    (written,) = (tmp_path / "masks").iterdir()
    assert Image.open(written).size == (40, 30)
