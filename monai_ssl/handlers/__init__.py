"""Handlers: checkpoints and resuming, momentum-target monitoring, logging and reports."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, CheckpointSaver, ResumeFromCheckpoint, latest_checkpoint
from .classification_report import ClassificationReportWriter
from .collapse_monitor import CollapseMonitor
from .export_encoder import EncoderExporter
from .progress import ProgressDisplay, loss_only
from .view_grid import ViewGridHandler

__all__ = [
    "AtomicDiskSaver",
    "CheckpointSaver",
    "ClassificationReportWriter",
    "CollapseMonitor",
    "EncoderExporter",
    "ProgressDisplay",
    "ResumeFromCheckpoint",
    "ViewGridHandler",
    "latest_checkpoint",
    "loss_only",
]
