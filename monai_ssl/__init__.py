"""monai_ssl: label-efficient medical imaging as MONAI parts.

BYOL self-supervision, BYOLMed2D for volumes, pseudo-labeling and cross-teaching, each a MONAI
network, loss, transform, handler or Ignite engine, wired together by MONAI Bundles.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import clustering, data, engines, handlers, losses, methods, metrics, networks, pseudo_label, recipes, transforms, utils  # noqa: E402,F401
