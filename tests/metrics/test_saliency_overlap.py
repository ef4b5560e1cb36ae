"""Tests of monai_ssl.metrics.saliency_overlap on hand-made maps with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_ssl.metrics import pointing_game, saliency_in_mask_share


def _mask(shape, rows, cols):
    m = np.zeros(shape, dtype=bool)
    m[rows, cols] = True
    return m


def test_in_mask_share_hand_computed():
    saliency = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 10.0]])
    mask = _mask((3, 3), slice(0, 2), slice(0, 2))  # holds 1 + 2 + 3 + 4 = 10 of the 20
    out = saliency_in_mask_share(saliency, mask)
    assert out == {"per_image": [0.5], "mean": 0.5, "n": 1}


def test_in_mask_share_batch_and_uniform_map():
    # image 0: uniform map -> share = area fraction 4/16; image 1: all saliency inside -> 1
    saliency = torch.zeros(2, 1, 4, 4)
    saliency[0] = 0.3
    saliency[1, 0, 1, 1] = 1.0
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    out = saliency_in_mask_share(saliency, mask)
    assert out["per_image"] == pytest.approx([0.25, 1.0])
    assert out["mean"] == pytest.approx(0.625) and out["n"] == 2


def test_in_mask_share_zero_map_is_undefined():
    saliency = np.zeros((2, 3, 3))
    saliency[1, 0, 0] = 2.0
    mask = np.zeros((2, 3, 3), dtype=bool)
    mask[:, 2, 2] = True
    out = saliency_in_mask_share(saliency, mask)
    assert out == {"per_image": [None, 0.0], "mean": 0.0, "n": 1}


def test_pointing_game_hand_computed():
    maps = np.zeros((3, 5, 5))
    maps[0, 1, 1] = 1.0  # inside the mask -> hit
    maps[1, 4, 4] = 1.0  # far outside -> miss
    maps[2, 0, 3] = 1.0  # 1 pixel right of the mask's corner (0, 2) -> miss, hit with tolerance 1
    mask = np.zeros((3, 5, 5), dtype=bool)
    mask[:, 0:3, 0:3] = True
    out = pointing_game(maps, mask)
    assert out == {"per_image": [True, False, False], "mean": pytest.approx(1 / 3), "n": 3}
    assert pointing_game(maps, mask, tolerance_px=1)["per_image"] == [True, False, True]
    # (4, 4) is sqrt(2^2 + 2^2) = 2.83 px from (2, 2): a hit at 2.9, not at 2.8
    assert pointing_game(maps[1], mask[1], tolerance_px=2.9)["per_image"] == [True]
    assert pointing_game(maps[1], mask[1], tolerance_px=2.8)["per_image"] == [False]


def test_pointing_game_ties_and_constant_map():
    tie = np.zeros((4, 4))
    tie[0, 0] = tie[3, 3] = 1.0
    mask = _mask((4, 4), slice(3, 4), slice(3, 4))
    assert pointing_game(tie, mask)["per_image"] == [True]  # one of the tied maxima is on the object
    assert pointing_game(np.full((4, 4), 0.5), mask)["per_image"] == [False]  # nothing pointed at


@pytest.mark.parametrize("fn", [saliency_in_mask_share, pointing_game])
def test_errors(fn):
    s = np.ones((2, 1, 4, 4))
    m = np.ones((2, 1, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="differ in shape"):
        fn(s, m[:, :, :3])
    empty = m.copy()
    empty[1] = False
    with pytest.raises(ValueError, match=r"mask of image\(s\) \[1\] is empty"):
        fn(s, empty)
    with pytest.raises(ValueError, match="finite and non-negative"):
        fn(-s, m)
    with pytest.raises(ValueError, match=r"must be \(H, W\), \(B, H, W\) or \(B, 1, H, W\)"):
        fn(np.ones((2, 3, 4, 4)), np.ones((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="tensor or a numpy array"):
        fn([[1.0]], m)


def test_negative_tolerance():
    with pytest.raises(ValueError, match="`tolerance_px` must be a number >= 0"):
        pointing_game(np.ones((2, 2)), np.ones((2, 2)), tolerance_px=-1)


def test_wilson_interval95_hand_computed():
    from monai_ssl.metrics.saliency_overlap import wilson_interval95

    # 8 of 10: p = 0.8, z = 1.96: centre (0.8 + 0.19207) / 1.38415 = 0.71673, half 0.22659
    low, high = wilson_interval95(8, 10)
    assert (low, high) == pytest.approx((0.49016, 0.94332), abs=1e-5)
    assert wilson_interval95(0, 5)[0] == 0.0 and wilson_interval95(5, 5)[1] == 1.0
    assert wilson_interval95(1, 2) == pytest.approx((0.09453, 0.90547), abs=1e-5)
    with pytest.raises(ValueError, match="0 <= hits <= n and n >= 1"):
        wilson_interval95(3, 2)
    with pytest.raises(ValueError, match="0 <= hits <= n and n >= 1"):
        wilson_interval95(0, 0)
