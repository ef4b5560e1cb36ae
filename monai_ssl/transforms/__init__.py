"""transforms."""

from __future__ import annotations

from .slices import SampleSlicesd
from .views import BYOLViewsd, ViewAugmentation, ViewParams, byol_view_pair
from .view_params import VIEW_PARAM_FIELDS, BYOLViewParamsd, view_params_vector
from .multi_crop import MultiCropViewsd, multi_crop_view_keys
from .multi_crop_params import MultiCropViewParamsd, multi_crop_param_keys
from .compact import CompactUint8d, compact_uint8
from .batched_views import apply_view_params, resize_matrices, scale_intensity_batch
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
from .red_channel import NormalizeRedChanneld, dermoscopy_intensity, normalize_red_channel, normalize_red_channel_batch
from .geometric_transform import geometric_transform
from .picie_views import PiCIEAugmentation, PiCIEViewParams, photometric_views, picie_view_params
