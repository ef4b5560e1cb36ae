"""``CompactUint8d``: 8-bit images travel and are cached as uint8; anything else is left alone."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor

from monai_ssl.transforms import CompactUint8d, compact_uint8


def test_eight_bit_values_become_uint8_rounded():
    img = MetaTensor(torch.tensor([[[0.0, 12.4, 12.6, 255.0]]]))
    out = CompactUint8d(keys="image")({"image": img, "id": "a"})
    assert out["id"] == "a" and out["image"].dtype == torch.uint8
    assert out["image"].tolist() == [[[0, 12, 13, 255]]]


def test_values_that_would_lose_information_are_kept():
    sixteen_bit = torch.tensor([[0.0, 4000.0]])
    unit_range = torch.rand(1, 8, 8)
    negative = torch.tensor([[-1.0, 100.0]])
    few_levels = torch.tensor([[3.0, 10.0]])
    for img in (sixteen_bit, unit_range, negative, few_levels):
        assert compact_uint8(img) is img
    already = np.zeros((2, 2), dtype=np.uint8)
    assert compact_uint8(already) is already
