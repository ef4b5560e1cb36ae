"""Mean and 95 % confidence interval of the study's seeds: :mod:`monai_ssl.metrics.confidence_interval`.

Kept as the study's name for it; the function lives with the metrics, so that handlers (the
segmentation report) use it without importing the study.
"""

from __future__ import annotations

from monai_ssl.metrics.confidence_interval import mean_ci95, t_quantile_975

__all__ = ["mean_ci95", "t_quantile_975"]
