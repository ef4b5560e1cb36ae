"""transforms."""

from __future__ import annotations

from .slices import SampleSlicesd
from .views import BYOLViewsd, ViewAugmentation, byol_view_pair
from .io import LoadVolumed, load_volume
from .image2d import LoadImage2Dd, load_image_2d
from .pair_prediction import SplitPairPredictiond
from .dermoscopy import LoadDermoscopyd, to_mask_channel, to_rgb
from .lesion_mask import (
    BinarizeMaskd,
    binarize_mask,
    log_mask_threshold_summary,
    mask_threshold_summary,
    reset_mask_threshold_summary,
)
from .red_channel import NormalizeRedChanneld, normalize_red_channel
