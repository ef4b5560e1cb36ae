"""The images PiCIE trains on: the whole image resized to one square size, loaded once and cached, no mask.

PiCIE draws every view of an image from ``(seed, epoch, index)`` on the device
(:func:`~monai_ssl.transforms.picie_view_params`), so that the clustering pass and the training pass of an
epoch see the same views. The loader's chain is therefore deterministic: load the RGB image (never a mask),
resize it to ``image_size`` x ``image_size`` (bilinear; images of mixed sizes become one size, as the
other configs of the bundle do), keep it as 8-bit for the cache, then intensities to [0, 1] as float32.
The reference trains on whole images resized to one resolution too.
"""

from __future__ import annotations

import torch
from monai.transforms import CastToTyped, Compose, EnsureTyped, Resized

from monai_ssl.transforms import LoadDermoscopyd, dermoscopy_intensity

__all__ = ["MIN_IMAGE_SIZE", "picie_training_transforms"]

MIN_IMAGE_SIZE = 64  # 2x2 maps after the ResNet's stride of 32


def picie_training_transforms(image_size: int, normalize_red_channel: bool = False) -> Compose:
    """The deterministic chain of PiCIE's training images (see the module docstring).

    Args:
        image_size: the side of the square images (S4MI: 224; the bundle's ``working_size``), at least 64 pixels.
        normalize_red_channel: must be False: PiCIE's colour views work on [0, 1] RGB intensities.

    Raises:
        ValueError: a bad ``image_size``, or ``normalize_red_channel`` set.
    """
    if isinstance(image_size, bool) or int(image_size) != image_size or int(image_size) < MIN_IMAGE_SIZE:
        raise ValueError(f"`working_size` (PiCIE's image size) must be a whole number of pixels of at least "
                         f"{MIN_IMAGE_SIZE}, got {image_size!r}: the ResNet downsamples by 32, and batch norm needs more "
                         "than one value per channel in its deepest maps when a batch holds a single image.")
    if normalize_red_channel:
        raise ValueError("`normalize_red_channel` is not available with PiCIE: its colour views (jitter, grayscale) "
                         "need [0, 1] RGB intensities; leave it false.")
    size = int(image_size)
    return Compose([
        LoadDermoscopyd(label_key=None),
        Resized(keys="image", spatial_size=[size, size], mode="bilinear"),
        CastToTyped(keys="image", dtype=torch.uint8),
        *dermoscopy_intensity(False),
        EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
    ])
