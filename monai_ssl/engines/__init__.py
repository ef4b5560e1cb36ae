"""Ignite engines (MONAI ``Trainer`` subclasses)."""

from __future__ import annotations

from .cross_teaching_trainer import CrossTeachingTrainer, cross_teaching_scalars
from .byol_trainer import BYOLTrainer, byol_scalars, prepare_views
from .device_views import DeviceViews, views_on_device
from .multi_crop_device_views import MultiCropDeviceViews
from .picie_trainer import PiCIEEvents, PiCIETrainer, picie_scalars
from .ssl_trainer import SelfSupervisedTrainer, method_scalars, prepare_view_list
from .step_trainer import OptimizerStepTrainer, clip_gradients, scaled_optimizers_step
from .steps import require_training_steps

__all__ = [
    "BYOLTrainer",
    "CrossTeachingTrainer",
    "DeviceViews",
    "MultiCropDeviceViews",
    "OptimizerStepTrainer",
    "PiCIEEvents",
    "PiCIETrainer",
    "SelfSupervisedTrainer",
    "byol_scalars",
    "clip_gradients",
    "cross_teaching_scalars",
    "method_scalars",
    "picie_scalars",
    "prepare_view_list",
    "prepare_views",
    "require_training_steps",
    "scaled_optimizers_step",
    "views_on_device",
]
