"""The per-image items of a MONAI evaluator's iteration, and the image file and id of each."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from monai.data import decollate_batch

__all__ = ["file_stem", "item_image_file", "per_image_items", "running_id"]


def _decollated(data: Any) -> list[dict] | None:
    """A list of per-image dicts as is, a dict of batches decollated, anything else ``None``."""
    if isinstance(data, dict):
        return decollate_batch(data, detach=True)
    if isinstance(data, (list, tuple)) and all(isinstance(d, dict) for d in data):
        return list(data)
    return None


def per_image_items(output: Any, batch: Any = None) -> list[dict]:
    """The per-image dicts of an iteration: each output item merged over its batch item.

    MONAI's evaluators keep in ``engine.state.batch`` the keys that only the input had (an ``"id"``, an
    ``"image_original"`` copied in preprocessing), and in ``engine.state.output`` the image, label and
    prediction; both are decollated per image by default, else decollated here. The batch is left out
    when it does not hold one dict per output item.

    Args:
        output: ``engine.state.output``.
        batch: ``engine.state.batch``.

    Raises:
        TypeError: ``output`` is neither a list of dicts nor a dict of batches.
    """
    items = _decollated(output)
    if items is None:
        raise TypeError(
            "expected engine.state.output to be a list of per-image dicts (decollated, MONAI's default) or a dict "
            f"of batched tensors, got {type(output).__name__}."
        )
    inputs = _decollated(batch) if batch is not None else None
    if inputs is None or len(inputs) != len(items):
        return items
    return [{**given, **item} for given, item in zip(inputs, items)]


def item_image_file(item: Mapping, image_key: str = "image") -> str | None:
    """``filename_or_obj`` of the item's image: the MetaTensor's meta, else ``item[f"{image_key}_meta_dict"]``."""
    meta = getattr(item.get(image_key), "meta", None) or item.get(f"{image_key}_meta_dict") or {}
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    return None if name is None else str(name)


def file_stem(path: str) -> str:
    """``ISIC_0000000`` of ``.../ISIC_0000000.jpg`` (and ``case`` of ``case.nii.gz``)."""
    name = Path(path).name
    return Path(name[:-3] if name.endswith(".gz") else name).stem


def running_id(index: int) -> str:
    """The id of an image without id or file name: its index, and the rank in distributed runs."""
    return str(index) if idist.get_world_size() == 1 else f"rank{idist.get_rank()}_{index}"
