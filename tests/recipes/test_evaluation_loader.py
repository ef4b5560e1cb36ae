"""The evaluation loader: every item once, in order, through the given transform."""

from __future__ import annotations

import pytest
import torch
from monai.data import DataLoader
from monai.transforms import Lambdad

from monai_ssl.recipes import evaluation_loader


def test_every_item_once_in_order():
    data = [{"image": torch.full((1, 2, 2), float(i)), "id": f"{i:02d}"} for i in range(5)]
    loader = evaluation_loader(data, Lambdad(keys="image", func=lambda x: x * 2), batch_size=2, num_workers=0)
    assert isinstance(loader, DataLoader) and loader.batch_size == 2
    batches = list(loader)
    assert [len(b["id"]) for b in batches] == [2, 2, 1]  # the last, smaller batch is kept
    assert [i for b in batches for i in b["id"]] == ["00", "01", "02", "03", "04"]
    assert torch.equal(batches[2]["image"], torch.full((1, 1, 2, 2), 8.0))  # the transform ran


@pytest.mark.parametrize(("batch_size", "num_workers", "message"),
                         [(0, 0, "`batch_size` must be at least 1"), (2, -1, "`num_workers` must be 0 or more")])
def test_bad_settings_are_refused_by_name(batch_size, num_workers, message):
    with pytest.raises(ValueError, match=message):
        evaluation_loader([], None, batch_size, num_workers)
