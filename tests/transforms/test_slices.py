"""Tests for slice sampling (monai_ssl.transforms.slices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_ssl.transforms import SampleSlicesd


def _volume(num_slices: int, channels: int = 1) -> torch.Tensor:
    """``(C, S, 4, 4)`` volume whose slice ``s`` holds the value ``s``."""
    return torch.arange(num_slices, dtype=torch.float32).view(1, num_slices, 1, 1).repeat(channels, 1, 4, 4)


def _slice_values(img: torch.Tensor | np.ndarray, dim: int = 1) -> np.ndarray:
    arr = np.asarray(img)
    return np.moveaxis(arr, dim, 0).reshape(arr.shape[dim], -1)[:, 0].astype(np.int64)


def test_random_distinct_sorted_indices() -> None:
    t = SampleSlicesd("image", num_slices=6).set_random_state(0)
    for _ in range(20):
        out = t({"image": _volume(20)})
        idx = out["image_slice_indices"]
        assert idx.dtype == np.int64 and idx.shape == (6,)
        assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 20
        assert tuple(out["image"].shape) == (1, 6, 4, 4)
        assert np.array_equal(_slice_values(out["image"]), idx)


def test_same_indices_for_all_keys_and_types_kept() -> None:
    image = MetaTensor(_volume(12), meta={"filename_or_obj": "scan.nii.gz"})
    label = _volume(12, channels=2).numpy()
    plain = _volume(12)
    out = SampleSlicesd(("image", "label", "plain"), num_slices=5).set_random_state(1)(
        {"image": image, "label": label, "plain": plain}
    )
    idx = out["image_slice_indices"]
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "scan.nii.gz"
    assert isinstance(out["label"], np.ndarray) and out["label"].shape == (2, 5, 4, 4)
    assert type(out["plain"]) is torch.Tensor
    for key in ("image", "label", "plain"):
        assert np.array_equal(_slice_values(out[key]), idx)
    assert "label_slice_indices" not in out and "plain_slice_indices" not in out


def test_mismatched_slice_counts_raise() -> None:
    with pytest.raises(ValueError, match=r"'image': 10.*'label': 8"):
        SampleSlicesd(("image", "label"), num_slices=4)({"image": _volume(10), "label": _volume(8)})


def test_evenly_spaced_when_not_random() -> None:
    t = SampleSlicesd("image", num_slices=4, random_sampling=False)
    for _ in range(3):
        out = t({"image": _volume(10)})
        expected = np.linspace(0, 9, 4).round().astype(np.int64)
        assert np.array_equal(out["image_slice_indices"], expected)
        assert np.array_equal(_slice_values(out["image"]), expected)


@pytest.mark.parametrize("random_sampling", [True, False])
@pytest.mark.parametrize("num_total", [1, 3, 5, 7])
def test_short_volume_repeat_policy(random_sampling: bool, num_total: int) -> None:
    t = SampleSlicesd("image", num_slices=8, random_sampling=random_sampling).set_random_state(2)
    for _ in range(5):
        out = t({"image": _volume(num_total)})
        idx = out["image_slice_indices"]
        assert idx.shape == (8,) and np.all(np.diff(idx) >= 0)
        assert set(idx.tolist()) == set(range(num_total))
        counts = np.bincount(idx, minlength=num_total)
        assert counts.max() - counts.min() <= 1  # repeats are spread over the slices
        assert np.array_equal(_slice_values(out["image"]), idx)


def test_short_volume_error_policy_names_file_and_numbers() -> None:
    t = SampleSlicesd("image", num_slices=8, short_policy="error")
    image = MetaTensor(_volume(3), meta={"filename_or_obj": "/data/knee_0042.npy"})
    with pytest.raises(ValueError, match=r"'image'.*knee_0042\.npy.*3 slices.*num_slices=8"):
        t({"image": image})
    with pytest.raises(ValueError, match=r"case-7.*3 slices"):
        t({"image": _volume(3), "id": "case-7"})
    assert t({"image": _volume(8)})["image"].shape[1] == 8  # enough slices: no error


def test_determinism_with_set_random_state() -> None:
    def run(seed: int) -> list[np.ndarray]:
        t = SampleSlicesd("image", num_slices=4).set_random_state(seed)
        return [t({"image": _volume(30)})["image_slice_indices"] for _ in range(5)]

    first, again, other = run(3), run(3), run(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_other_slice_dim_and_missing_keys() -> None:
    vol = np.moveaxis(_volume(9).numpy(), 1, -1)  # (C, H, W, S)
    out = SampleSlicesd(("image", "mask"), num_slices=3, slice_dim=-1, allow_missing_keys=True)({"image": vol})
    assert out["image"].shape == (1, 4, 4, 3)
    assert np.array_equal(_slice_values(out["image"], dim=3), out["image_slice_indices"])
    with pytest.raises(ValueError, match="short_policy"):
        SampleSlicesd("image", short_policy="pad")
