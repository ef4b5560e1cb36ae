"""Tests of the per-image segmentation metrics against hand-made masks and MONAI's compute_iou/compute_dice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.metrics import compute_dice, compute_iou

from monai_ssl.metrics.segmentation import binary_iou_dice, foreground_mask


def _square(top, left, side=4, shape=(10, 12)):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _monai(pred, truth, ignore_empty=False):
    p, t = torch.as_tensor(pred)[None, None].float(), torch.as_tensor(truth)[None, None].float()
    iou = compute_iou(p, t, include_background=True, ignore_empty=ignore_empty)
    dice = compute_dice(p, t, include_background=True, ignore_empty=ignore_empty)
    return float(iou), float(dice)


@pytest.mark.parametrize(
    "pred, truth, expected",
    [
        (_square(2, 2), _square(2, 2), (1.0, 1.0)),  # identical
        (_square(2, 2), _square(2, 4), (8 / 24, 16 / 32)),  # two 4x4 squares overlapping by half
        (_square(0, 0), _square(5, 6), (0.0, 0.0)),  # disjoint
        (_square(2, 2, side=2), _square(2, 2), (4 / 16, 8 / 20)),  # prediction inside the truth
        (np.zeros((10, 12), bool), np.zeros((10, 12), bool), (1.0, 1.0)),  # both empty: the convention
        (_square(2, 2), np.zeros((10, 12), bool), (0.0, 0.0)),  # false positive on an empty truth
        (np.zeros((10, 12), bool), _square(2, 2), (0.0, 0.0)),  # missed lesion
    ],
)
def test_hand_made_masks_match_monai(pred, truth, expected):
    assert binary_iou_dice(pred, truth) == pytest.approx(expected)
    assert _monai(pred, truth) == pytest.approx(expected)  # MONAI with ignore_empty=False agrees
    assert binary_iou_dice(torch.from_numpy(pred).float(), torch.from_numpy(truth).long()) == pytest.approx(expected)


def test_random_masks_match_monai():
    rng = np.random.default_rng(0)
    for _ in range(5):
        pred, truth = rng.random((2, 17, 23)) > rng.uniform(0.2, 0.8, size=(2, 1, 1))
        assert binary_iou_dice(pred, truth) == pytest.approx(_monai(pred, truth), abs=1e-6)


def test_monai_default_ignore_empty_gives_nan_for_any_empty_truth():
    # why binary_iou_dice does not use MONAI's default: NaN hides a false positive on a lesion-free image
    empty = np.zeros((4, 4), bool)
    assert all(math.isnan(v) for v in _monai(empty, empty, ignore_empty=True))
    assert all(math.isnan(v) for v in _monai(_square(0, 0, 2, (4, 4)), empty, ignore_empty=True))


def test_foreground_mask_forms():
    mask = _square(1, 2, shape=(6, 7))
    expected = mask
    onehot = torch.stack([torch.from_numpy(~mask), torch.from_numpy(mask)]).float()
    logits = torch.where(onehot > 0, 3.0, -1.0)
    meta = MetaTensor(torch.from_numpy(mask)[None].float(), meta={"filename_or_obj": "x.png"})
    for value in (mask, mask[None].astype(np.uint8), torch.from_numpy(mask)[None].float(), onehot, logits, meta):
        out = foreground_mask(value)
        assert out.dtype == bool and out.shape == (6, 7) and np.array_equal(out, expected)


def test_errors_name_the_key_and_shapes():
    with pytest.raises(ValueError, match=r"`label` must be a label map .* got shape \(3, 4, 4\)"):
        foreground_mask(torch.zeros(3, 4, 4), "label")
    with pytest.raises(ValueError, match=r"pred \(4, 4\) and truth \(4, 5\)"):
        binary_iou_dice(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(TypeError, match="`pred` must be a tensor or a numpy array"):
        foreground_mask([[0, 1]])
