"""Checks of what the pseudo-labeling rounds are given, so that a bad input fails at construction.

Used by :class:`~monai_ssl.pseudo_label.PseudoLabelRounds` (the self-training rounds of
"Integration of Self-Supervised BYOL in Semi-Supervised Medical Image Recognition", Feng et al.).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["check_flag", "check_items", "check_labeled_and_unlabeled", "check_settings"]


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool; ``ValueError`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_items(items: Sequence[dict], name: str, keys: Sequence[str]) -> list[dict]:
    """``items`` as a list, each a dict with ``keys`` and a unique ``"id"``.

    Raises:
        TypeError: an item is not a dict.
        ValueError: an item lacks a key, or ids repeat.
    """
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise TypeError(f"`{name}[{i}]` must be a dict, got {type(item).__name__}.")
        missing = [k for k in keys if k not in item]
        if missing:
            raise ValueError(f"`{name}[{i}]` has no {missing} (keys present: {sorted(item)}).")
    ids = [str(x["id"]) for x in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"`{name}` repeats ids; every item needs a unique 'id'.")
    return items


def check_settings(settings: Mapping[str, Any] | None, reserved: Sequence[str]) -> dict[str, Any]:
    """The settings every round's run gets, as a dict; ``ValueError`` for one the rounds set themselves.

    Raises:
        TypeError: ``settings`` is not a mapping of config ids.
        ValueError: it sets an id of ``reserved`` (named in the message).
    """
    if settings is None:
        return {}
    if not isinstance(settings, Mapping) or not all(isinstance(k, str) for k in settings):
        raise TypeError(f"`settings` must map config ids to values, got {type(settings).__name__}.")
    clash = sorted(set(settings) & set(reserved))
    if clash:
        raise ValueError(f"`settings` sets {clash}, which the rounds set for each round's run; leave them out.")
    return dict(settings)


def check_labeled_and_unlabeled(labeled: Sequence[dict], unlabeled: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The labeled items (``image``, ``id``, ``label``; not empty) and the unlabeled pool (``image``, ``id``) as lists.

    Raises:
        ValueError / TypeError: see :func:`check_items`; no labeled item; an id in both lists.
    """
    labeled = check_items(labeled, "labeled", ("image", "id", "label"))
    unlabeled = check_items(unlabeled, "unlabeled", ("image", "id"))
    if not labeled:
        raise ValueError("`labeled` is empty; round 0 fine-tunes on the labeled set, which needs items.")
    overlap = {str(x["id"]) for x in labeled} & {str(x["id"]) for x in unlabeled}
    if overlap:
        raise ValueError(f"ids must be unique across labeled and unlabeled items; both hold {sorted(overlap)[:5]}.")
    return labeled, unlabeled
