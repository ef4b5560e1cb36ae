"""Handlers: checkpoints and resuming, momentum-target monitoring, logging and reports."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, CheckpointSaver, latest_checkpoint, remove_stale_temporaries
from .classification_report import ClassificationReportWriter
from .cluster_monitor import ClusterMonitor, cluster_overlay
from .collapse_monitor import CollapseMonitor
from .export_encoder import EncoderExporter
from .final_model import FinalModelWriter
from .model_settings import ModelSettingsWriter
from .optimizer_schedules import OptimizerSchedules
from .progress import ProgressDisplay, loss_only
from .resume import ResumeFromCheckpoint
from .run_identity import RunIdentity, datalist_fingerprint, read_run_identity
from .saliency_writer import SaliencyWriter, resolve_saliency_method
from .run_length import epochs_for_steps, optimizer_steps_per_epoch, run_length
from .segmentation_metrics import ForegroundOverlap
from .segmentation_overlay_logger import SegmentationOverlayLogger
from .segmentation_report import SegmentationReportWriter
from .view_grid import ViewGridHandler

__all__ = [
    "AtomicDiskSaver",
    "CheckpointSaver",
    "ClassificationReportWriter",
    "ClusterMonitor",
    "CollapseMonitor",
    "EncoderExporter",
    "FinalModelWriter",
    "ForegroundOverlap",
    "ModelSettingsWriter",
    "OptimizerSchedules",
    "ProgressDisplay",
    "ResumeFromCheckpoint",
    "RunIdentity",
    "SaliencyWriter",
    "SegmentationOverlayLogger",
    "SegmentationReportWriter",
    "ViewGridHandler",
    "cluster_overlay",
    "datalist_fingerprint",
    "epochs_for_steps",
    "latest_checkpoint",
    "loss_only",
    "optimizer_steps_per_epoch",
    "read_run_identity",
    "remove_stale_temporaries",
    "resolve_saliency_method",
    "run_length",
]
