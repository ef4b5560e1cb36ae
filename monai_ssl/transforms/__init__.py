"""transforms."""

from __future__ import annotations

from .slices import SampleSlicesd
from .views import BYOLViewsd, ViewAugmentation, byol_view_pair
from .io import LoadVolumed, load_volume
from .image2d import LoadImage2Dd, load_image_2d
