"""Self-supervised methods as plug-ins of one trainer (:class:`~monai_ssl.engines.SelfSupervisedTrainer`)."""

from __future__ import annotations

from .base import MethodState, SelfSupervisedMethod, method_optimizers
from .byol import BYOLMethod, BYOLPlusMethod
from .cass import CASSMethod
from .dino import DINOMethod
from .registry import METHODS, method_from_name

__all__ = [
    "BYOLMethod",
    "BYOLPlusMethod",
    "CASSMethod",
    "DINOMethod",
    "METHODS",
    "MethodState",
    "SelfSupervisedMethod",
    "method_from_name",
    "method_optimizers",
]
