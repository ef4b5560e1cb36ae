"""MONAI Label integration: serve the bundles, train cross-teaching from a datastore, active learning.

Needs MONAI Label (``bash scripts/setup.sh --label``). :mod:`monai_ssl.label.served_bundle` and
:mod:`monai_ssl.label.scores` work without it; the other modules import ``monailabel``.
"""

from __future__ import annotations

from monai_ssl.label.scores import least_confidence, pair_disagreement
from monai_ssl.label.served_bundle import BundleNotServable, ServedBundle, discover_bundles, read_served_bundle

__all__ = [
    "BundleNotServable",
    "ServedBundle",
    "discover_bundles",
    "least_confidence",
    "pair_disagreement",
    "read_served_bundle",
]
