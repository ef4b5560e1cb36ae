"""Datasets as MONAI datalists: MRNet knee MRI, a synthetic MRNet-layout demo, class balancing."""

from __future__ import annotations

from .folders import VOLUME_SUFFIXES, volume_datalist
from .mrnet import (
    MRNET_PLANES,
    MRNET_SPLITS,
    MRNET_TASKS,
    mrnet_datalist,
    read_mrnet_labels,
    validate_volume_file,
)
from .sampling import oversample_minority
from .synthetic import DEMO_MARKER, ensure_mrnet_demo, is_mrnet_demo, make_mrnet_demo

__all__ = [
    "DEMO_MARKER",
    "VOLUME_SUFFIXES",
    "MRNET_PLANES",
    "MRNET_SPLITS",
    "MRNET_TASKS",
    "ensure_mrnet_demo",
    "is_mrnet_demo",
    "make_mrnet_demo",
    "mrnet_datalist",
    "oversample_minority",
    "read_mrnet_labels",
    "validate_volume_file",
    "volume_datalist",
]
