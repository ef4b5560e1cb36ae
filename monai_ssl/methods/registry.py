"""The self-supervised methods by name, for ``--method``."""

from __future__ import annotations

from typing import Any

from .base import SelfSupervisedMethod
from .byol import BYOLMethod, BYOLPlusMethod
from .cass import CASSMethod
from .dino import DINOMethod

__all__ = ["METHODS", "method_from_name"]

METHODS: dict[str, type[SelfSupervisedMethod]] = {
    "byol": BYOLMethod,
    "byol_plus": BYOLPlusMethod,
    "dino": DINOMethod,
    "cass": CASSMethod,
}


def method_from_name(name: str, **kwargs: Any) -> SelfSupervisedMethod:
    """The method called ``name`` (``"byol"``, ``"byol_plus"``, ``"dino"``, ``"cass"``), built with ``kwargs``.

    Raises:
        ValueError: an unknown name; the message lists the choices.
    """
    key = str(name).lower()
    if key not in METHODS:
        raise ValueError(f"unknown self-supervised method {name!r}; choose one of {sorted(METHODS)}.")
    return METHODS[key](**kwargs)
