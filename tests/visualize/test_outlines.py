"""Tests of the outline pictures: band geometry, colours, intensity scaling, orientation and downscaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_ssl.visualize import mask_outline, outline_overlay
from monai_ssl.visualize.outlines import OVERLAP_COLOR, PREDICTION_COLOR, TRUTH_COLOR


def _square(top, left, side, shape):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_mask_outline_is_the_inner_band():
    mask = _square(2, 3, 6, (10, 12))
    ring = mask_outline(mask)
    inside = _square(3, 4, 4, (10, 12))
    assert ring.dtype == bool and np.array_equal(ring, mask & ~inside)  # one pixel wide
    thick = mask_outline(torch.from_numpy(mask)[None], thickness=2)  # (1, H, W) tensor accepted
    assert np.array_equal(thick, mask & ~_square(4, 5, 2, (10, 12)))
    assert not mask_outline(np.zeros((5, 5), bool)).any()
    edge = mask_outline(np.ones((4, 5), bool))  # a mask reaching the border is outlined along it
    assert edge[0].all() and edge[-1].all() and edge[:, 0].all() and not edge[1:-1, 1:-1].any()
    with pytest.raises(ValueError, match="thickness"):
        mask_outline(mask, thickness=0)


def test_colours_on_a_grey_image():
    image = np.full((3, 20, 30), 100, dtype=np.uint8)  # uint8 shown as it is
    truth = _square(2, 2, 8, (20, 30))
    pred = _square(2, 6, 8, (20, 30))  # overlaps the truth, shares its top edge
    out = outline_overlay(image, truth, pred, thickness=1)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert tuple(out[5, 2]) == TRUTH_COLOR  # left edge of the truth only
    assert tuple(out[5, 13]) == PREDICTION_COLOR  # right edge of the prediction only
    assert tuple(out[2, 7]) == OVERLAP_COLOR  # the shared top edge
    assert tuple(out[15, 25]) == (100, 100, 100) and tuple(out[5, 8]) == (100, 100, 100)
    only_image = outline_overlay(image[:1])  # one channel, no masks: grey picture
    assert (only_image == 100).all()


def test_float_images_are_windowed_and_8bit_floats_kept():
    rng = np.random.default_rng(0)
    normalised = rng.normal(size=(3, 40, 50)).astype(np.float32)
    out = outline_overlay(normalised)
    assert out.min() == 0 and out.max() == 255  # 1st..99th percentile stretched to 0..255, rest clipped
    assert 0.005 < (out == 255).mean() < 0.02  # about the 1 % above the 99th percentile
    eight_bit = rng.integers(0, 256, size=(3, 40, 50)).astype(np.float32)  # a JPEG read by LoadImage
    np.testing.assert_array_equal(outline_overlay(eight_bit), eight_bit.transpose(1, 2, 0).astype(np.uint8))
    flat = outline_overlay(np.full((1, 4, 4), 0.3, np.float32))
    assert flat.shape == (4, 4, 3)


def test_wh_order_is_transposed_back():
    # MONAI's PILReader gives (C, W, H): a 30-wide, 20-high file arrives as (3, 30, 20)
    image_hw = np.zeros((3, 20, 30), np.uint8)
    image_hw[0, :5, :10] = 200  # red block in the top-left corner of the file
    truth_hw = _square(10, 20, 6, (20, 30))
    out = outline_overlay(image_hw.transpose(0, 2, 1), truth_hw.T[None], spatial_order="WH", thickness=1)
    assert out.shape == (20, 30, 3)
    assert tuple(out[2, 7]) == (200, 0, 0)
    assert tuple(out[10, 22]) == TRUTH_COLOR and tuple(out[12, 22]) == (0, 0, 0)
    np.testing.assert_array_equal(out, outline_overlay(image_hw, truth_hw, thickness=1))
    with pytest.raises(ValueError, match="spatial_order"):
        outline_overlay(image_hw, spatial_order="XY")


def test_large_image_downscaled_with_visible_outlines():
    image = torch.rand(3, 768, 2048)  # a wide photograph
    truth = torch.zeros(1, 768, 2048)
    truth[0, 200:600, 512:1536] = 1
    out = outline_overlay(image, truth, max_side=1024)
    assert out.shape == (384, 1024, 3)
    green = np.all(out == TRUTH_COLOR, axis=-1)
    assert green[200, 256:260].all()  # a 4-pixel band at 1024 pixels (the left edge is at column 256)
    assert not green[200, 255] and not green[200, 260]
    small = outline_overlay(image, torch.nn.functional.interpolate(truth[None], size=(96, 256))[0], max_side=400)
    assert small.shape == (150, 400, 3) and np.all(small == TRUTH_COLOR, axis=-1).any()  # masks resized to it


def test_bad_image_shape():
    with pytest.raises(ValueError, match=r"`image` must have shape .* got \(4, 5, 5\)"):
        outline_overlay(np.zeros((4, 5, 5)))
