"""Pick a fixed number of slices from a volume, in order, for slice-wise 2D self-supervision.

BYOL (Grill et al. 2020, "Bootstrap your own latent") is defined on 2D images; a volume is fed to
it as a stack of ``num_slices`` slices, which :class:`SampleSlicesd` selects.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

__all__ = ["SampleSlicesd"]

_SHORT_POLICIES = ("repeat", "error")


def _even_slice_indices(num_total: int, num_slices: int) -> np.ndarray:
    """Deterministic sorted indices: ``np.linspace(0, num_total - 1, num_slices).round()``.

    For a short volume (``num_total < num_slices``) every slice is taken ``num_slices // num_total``
    times and ``num_slices % num_total`` evenly spaced slices once more, so repeats are balanced.
    """
    if num_total >= num_slices:
        return np.linspace(0, num_total - 1, num_slices).round().astype(np.int64)
    extra = np.linspace(0, num_total - 1, num_slices % num_total).round()
    return _tile_and_sort(num_total, num_slices, extra)


def _tile_and_sort(num_total: int, num_slices: int, extra: np.ndarray) -> np.ndarray:
    """Every slice ``num_slices // num_total`` times plus the ``extra`` indices, sorted, as int64."""
    base = np.repeat(np.arange(num_total), num_slices // num_total)
    return np.sort(np.concatenate([base, np.asarray(extra, dtype=np.int64)])).astype(np.int64)


class SampleSlicesd(MapTransform, Randomizable):
    """Select ``num_slices`` slices along ``slice_dim``, the same ones for every key, in order.

    Random mode draws ``num_slices`` distinct indices uniformly and sorts them; deterministic mode
    (``random_sampling=False``, for validation and inference) takes evenly spaced indices
    ``np.linspace(0, S - 1, num_slices).round()``.

    When the volume has fewer slices than asked (``S < num_slices``):

    * ``short_policy="repeat"``: every slice is kept and slices are repeated to reach
      ``num_slices``, sorted so slice order is kept. In random mode each slice appears
      ``num_slices // S`` times and ``num_slices % S`` distinct slices once more, chosen at
      random (random mode) or evenly spaced (deterministic mode), so repeats are balanced.
    * ``short_policy="error"``: raise ``ValueError`` naming the key, the file and both numbers.

    The chosen indices are stored as ``data[f"{key}_slice_indices"]`` (int64 array) for the first
    key present. Numpy arrays stay numpy arrays; tensors and MetaTensors stay (Meta)Tensors.

    Args:
        keys: keys of the channel-first arrays to slice; all must have the same number of slices.
        num_slices: number of slices to return.
        slice_dim: the slice axis of the channel-first array (1 for ``(C, S, H, W)``).
        random_sampling: random distinct indices (True) or evenly spaced ones (False).
        short_policy: ``"repeat"`` or ``"error"`` for volumes with fewer than ``num_slices`` slices.
        allow_missing_keys: do not raise for keys missing from the data.
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_slices: int = 16,
        slice_dim: int = 1,
        random_sampling: bool = True,
        short_policy: str = "repeat",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if num_slices < 1:
            raise ValueError(f"num_slices must be at least 1, got {num_slices}.")
        if short_policy not in _SHORT_POLICIES:
            raise ValueError(f"short_policy must be one of {_SHORT_POLICIES}, got {short_policy!r}.")
        self.num_slices = int(num_slices)
        self.slice_dim = int(slice_dim)
        self.random_sampling = random_sampling
        self.short_policy = short_policy
        self._indices: np.ndarray = np.zeros(0, dtype=np.int64)

    def randomize(self, data: int) -> None:
        """Draw sorted random indices for a volume with ``data`` slices.

        Args:
            data: the number of slices ``S`` of the volume.
        """
        num_total, k = int(data), self.num_slices
        if num_total >= k:
            self._indices = np.sort(self.R.choice(num_total, size=k, replace=False)).astype(np.int64)
        else:
            self._indices = _tile_and_sort(num_total, k, self.R.choice(num_total, size=k % num_total, replace=False))

    def _axis(self, img: NdarrayOrTensor) -> int:
        """The slice axis of ``img`` as a non-negative int."""
        axis = self.slice_dim + img.ndim if self.slice_dim < 0 else self.slice_dim
        if not 0 <= axis < img.ndim:
            raise ValueError(f"slice_dim {self.slice_dim} is out of range for an array of shape {tuple(img.shape)}.")
        return axis

    @staticmethod
    def _source_name(data: Mapping[Hashable, Any], key: Hashable) -> str:
        """The file of ``data[key]`` (MetaTensor ``filename_or_obj``), else ``data["id"]``, else unknown."""
        img = data[key]
        if isinstance(img, MetaTensor) and img.meta.get("filename_or_obj"):
            return str(img.meta["filename_or_obj"])
        if "id" in data:
            return str(data["id"])
        return "<unknown source>"

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Slice every key with the same indices; record them under ``f"{first_key}_slice_indices"``."""
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        sizes = {key: int(d[key].shape[self._axis(d[key])]) for key in keys}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{key!r}: {size}" for key, size in sizes.items())
            raise ValueError(f"All keys must have the same number of slices along dim {self.slice_dim}; got {listed}.")
        first = keys[0]
        num_total = sizes[first]
        if num_total < 1:
            raise ValueError(f"{first!r} from {self._source_name(d, first)} has no slices.")
        if num_total < self.num_slices and self.short_policy == "error":
            raise ValueError(
                f"{first!r} from {self._source_name(d, first)} has {num_total} slices, "
                f"fewer than num_slices={self.num_slices}."
            )
        if self.random_sampling:
            self.randomize(num_total)
        else:
            self._indices = _even_slice_indices(num_total, self.num_slices)
        indices = self._indices.copy()
        for key in keys:
            img = d[key]
            axis = self._axis(img)
            if isinstance(img, torch.Tensor):
                d[key] = img.index_select(axis, torch.as_tensor(indices, device=img.device))
            else:
                d[key] = np.take(np.asarray(img), indices, axis=axis)
        d[f"{first}_slice_indices"] = indices
        return d
