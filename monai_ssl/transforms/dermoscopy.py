"""Dermoscopy images and lesion masks (ISIC and alike) in MONAI pipelines: load, binarize, normalise.

Loading goes through MONAI's ``LoadImaged`` with a ``PILReader`` whose ``converter`` fixes the
channels right after PIL opens the file:

* :func:`to_rgb`: every image becomes RGB (alpha dropped, CMYK/YCbCr/palette/grayscale converted);
* :func:`to_mask_channel`: every mask becomes one channel.

The arrays keep MONAI's ``PILReader`` convention: spatial axes ``(W, H)`` (``reverse_indexing``),
channel first, so a loaded image is ``(3, W, H)`` and its mask ``(1, W, H)``, and ``SaveImaged``
with MONAI's ``PILWriter`` writes a mask back in the orientation it was read. :class:`LoadDermoscopyd`
builds both loaders; in a bundle JSON the converters can also be used directly::

    {"_target_": "LoadImaged", "keys": "image", "ensure_channel_first": true,
     "reader": "$monai.data.PILReader(converter=monai_ssl.transforms.to_rgb)"}
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor, PILReader
from monai.transforms import LoadImaged, MapTransform

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "BinarizeMaskd",
    "LoadDermoscopyd",
    "NormalizeRedChanneld",
    "binarize_mask",
    "mask_threshold_summary",
    "normalize_red_channel",
    "reset_mask_threshold_summary",
    "to_mask_channel",
    "to_rgb",
]

logger = logging.getLogger("monai_ssl")

_WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")  # more than 8 bits per pixel, one channel
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


def _name(image: PILImage) -> str:
    """The file an opened PIL image came from, for messages."""
    return str(getattr(image, "filename", "") or "an in-memory image")


def _wide_to_uint8(image: PILImage) -> np.ndarray:
    """A one-channel image of more than 8 bits as uint8 ``(H, W)``.

    Values above 255 mean the full 16-bit range is used: they are divided by 257 (65535 -> 255).
    Otherwise the values (0..255, e.g. an 8-bit image stored as 16-bit) are kept as they are.
    """
    array = np.asarray(image).astype(np.float64)
    array = np.nan_to_num(array, nan=0.0, posinf=65535.0, neginf=0.0)
    if array.max(initial=0.0) > 255:
        array = array / 257.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def to_rgb(image: PILImage) -> PILImage:
    """Convert an opened PIL image to mode ``RGB`` (a ``PILReader`` converter).

    RGB passes unchanged; an alpha channel is dropped (RGBA, LA, palette with transparency);
    CMYK, YCbCr and the other colour modes go through PIL's conversion; grayscale ``L``/``1`` is
    repeated into three channels; 16-bit and float grayscale (``I;16``, ``I``, ``F``) are first
    made 8-bit (divided by 257 when any value exceeds 255, else kept).

    Args:
        image: a ``PIL.Image.Image``.

    Returns:
        A ``PIL.Image.Image`` in mode ``RGB``, of the same size.

    Raises:
        ValueError: a mode PIL cannot convert to RGB (the message names the file).
    """
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    try:
        if mode in _WIDE_MODES:
            return Image.fromarray(_wide_to_uint8(image)).convert("RGB")
        if mode in ("P", "PA"):
            return image.convert("RGBA").convert("RGB")
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot convert image {_name(image)} of mode {mode!r} to RGB: {err}") from err


def _palette_mask(image: PILImage) -> np.ndarray:
    """A palette mask as uint8: the gray level when every used colour is gray, else the palette index."""
    indices = np.asarray(image.getchannel("P") if image.mode == "PA" else image)
    palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    used = np.unique(indices)
    if len(palette) > used.max(initial=0) and np.all(palette[used, 0] == palette[used, 1]) and np.all(
        palette[used, 1] == palette[used, 2]
    ):
        return palette[indices, 0]
    return indices.astype(np.uint8)


def to_mask_channel(image: PILImage) -> PILImage:
    """Convert an opened PIL mask to one channel, mode ``L`` (a ``PILReader`` converter).

    ``L`` passes unchanged; ``1`` becomes 0/255; ``LA`` keeps its gray band; a palette mask gives
    its gray level when every used palette colour is gray, else its palette index (0 background,
    1.. the labels); a colour mask (RGB, RGBA, CMYK, ...) gives the largest of its R, G, B values,
    so a lesion drawn in any colour counts; 16-bit and float masks are made 8-bit like
    :func:`to_rgb` does (0/1 and 0/255 masks keep their values, 0/65535 becomes 0/255).

    Args:
        image: a ``PIL.Image.Image``.

    Returns:
        A ``PIL.Image.Image`` in mode ``L``, of the same size.

    Raises:
        ValueError: a mode that cannot be made one channel (the message names the file).
    """
    from PIL import Image

    mode = image.mode
    if mode == "L":
        return image
    try:
        if mode == "1":
            return image.convert("L")
        if mode == "LA":
            return image.getchannel("L")
        if mode in ("P", "PA"):
            return Image.fromarray(_palette_mask(image))
        if mode in _WIDE_MODES:
            return Image.fromarray(_wide_to_uint8(image))
        if mode in _COLOUR_MODES:
            return Image.fromarray(np.asarray(image.convert("RGB")).max(axis=-1))
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot convert mask {_name(image)} of mode {mode!r} to one channel: {err}") from err
    raise ValueError(f"cannot convert mask {_name(image)} of mode {mode!r} to one channel; expected a grayscale, "
                     "palette or colour image")


class LoadDermoscopyd(MapTransform):
    """Dictionary transform: load an RGB dermoscopy image and (when present) its one-channel lesion mask.

    The image under ``image_key`` becomes a float ``(3, W, H)`` MetaTensor through
    :func:`to_rgb`, the mask under ``label_key`` a float ``(1, W, H)`` MetaTensor through
    :func:`to_mask_channel`, both read by MONAI's ``PILReader`` (spatial order ``(W, H)``, MONAI's
    convention, see the module docstring) with ``meta["filename_or_obj"]`` set. Intensities are
    not scaled (0..255); follow with :class:`BinarizeMaskd` for the mask. An item without
    ``label_key`` (an unlabeled image) keeps no label.

    Example::

        LoadDermoscopyd()({"id": "ISIC_0000000", "image": ".../ISIC_0000000.jpg",
                           "label": ".../ISIC_0000000_segmentation.png"})
    """

    def __init__(
        self,
        image_key: str = "image",
        label_key: str | None = "label",
        allow_missing_label: bool = True,
        dtype: DtypeLike = np.float32,
    ) -> None:
        """Set up the two loaders.

        Args:
            image_key: the key of the image path (always required).
            label_key: the key of the mask path; ``None`` loads images only.
            allow_missing_label: an item without ``label_key`` passes without a label; ``False``
                makes a missing label an error.
            dtype: the loaded arrays' data type.
        """
        keys = [image_key] if label_key is None else [image_key, label_key]
        super().__init__(keys, allow_missing_keys=allow_missing_label)
        self.image_key, self.label_key = image_key, label_key
        self._image_reader = PILReader(converter=to_rgb)
        self._mask_reader = PILReader(converter=to_mask_channel)
        with warnings.catch_warnings():  # optional GPU DICOM decoder missing: harmless, DICOM is never read here
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            warnings.filterwarnings("ignore", message=".*NvImgCodec.*")
            self._load_image = LoadImaged(image_key, dtype=dtype, ensure_channel_first=True, image_only=True)
            self._load_label = (
                None
                if label_key is None
                else LoadImaged(label_key, dtype=dtype, ensure_channel_first=True, image_only=True,
                                allow_missing_keys=allow_missing_label)
            )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load the image and the mask (the readers are passed per call, so no other reader is tried)."""
        d = dict(data)
        if self.image_key not in d:
            raise KeyError(f"LoadDermoscopyd: item {d.get('id', '(no id)')!r} has no {self.image_key!r} key")
        d = self._load_image(d, reader=self._image_reader)
        if self._load_label is not None:
            d = self._load_label(d, reader=self._mask_reader)
        return d


# ----------------------------------------------------------------------------------------------------------------------
# Mask binarization, with a per-process record of masks that had to be thresholded
_thresholded_count = 0
_first_thresholded: str | None = None


def mask_threshold_summary() -> tuple[int, str | None]:
    """``(count, first file)`` of the masks this process thresholded because they were not exactly binary.

    Each DataLoader worker process keeps its own count.
    """
    return _thresholded_count, _first_thresholded


def log_mask_threshold_summary(*datasets: object) -> int:
    """Log how many masks were thresholded so far in this process (one warning when any were); return the count.

    Call it after the cached datasets are built (pass them, so a bundle config builds them first):
    ``"$monai_ssl.transforms.log_mask_threshold_summary(@train#dataset, @validate#dataset)"``.
    """
    del datasets  # only referenced so that they are built (and their masks read) before the count is taken
    count, first = mask_threshold_summary()
    if count:
        logger.warning(
            "%d lesion mask(s) held values other than 0 and 255 and were thresholded at 128 (first: %s); "
            "save masks as PNG with values 0 and 255 to avoid this.", count, first,
        )
    return count


def reset_mask_threshold_summary() -> None:
    """Forget the thresholded masks (the next one logs its warning again); for tests and new runs."""
    global _thresholded_count, _first_thresholded
    _thresholded_count, _first_thresholded = 0, None


def _record_thresholded(name: str, threshold: float) -> None:
    """Count a thresholded mask; the first one of the process logs a warning."""
    global _thresholded_count, _first_thresholded
    _thresholded_count += 1
    if _first_thresholded is None:
        _first_thresholded = name
        logger.warning(
            "lesion mask %s holds values other than 0 and 255 (e.g. a JPEG-compressed mask); thresholded at >= %g. "
            "Further such masks are thresholded without a warning and counted: see "
            "monai_ssl.transforms.mask_threshold_summary()",
            name, threshold,
        )


def binarize_mask(mask: Any, threshold: float = 128, name: str | None = None) -> Any:
    """Turn a lesion mask into float32 0 (background) / 1 (lesion).

    * only 0 and 1: already binary, kept;
    * only 0 and 255: 255 is lesion;
    * anything else (a JPEG-compressed or resampled mask): ``value >= threshold`` is lesion; the
      mask is counted (see :func:`mask_threshold_summary`) and the first one logs a warning.

    Args:
        mask: a tensor (MetaTensor meta is kept) or numpy array of any shape.
        threshold: the lesion threshold for non-binary masks, in the mask's units.
        name: the mask's name for the warning; default the MetaTensor's ``filename_or_obj``.

    Returns:
        The same kind of container, float32, values exactly 0 and 1.
    """
    if isinstance(mask, torch.Tensor):
        zero, one, full = mask == 0, mask == 1, mask == 255
        if bool((zero | one).all()):
            return one.to(torch.float32)
        if not bool((zero | full).all()):
            meta = mask.meta if isinstance(mask, MetaTensor) else {}
            _record_thresholded(name or str(meta.get("filename_or_obj", "an in-memory mask")), threshold)
        return (mask >= threshold).to(torch.float32)
    array = np.asarray(mask)
    zero, one, full = array == 0, array == 1, array == 255
    if bool((zero | one).all()):
        return one.astype(np.float32)
    if not bool((zero | full).all()):
        _record_thresholded(name or "an in-memory mask", threshold)
    return (array >= threshold).astype(np.float32)


class BinarizeMaskd(MapTransform):
    """Dictionary transform: lesion masks under ``keys`` become float32 0/1 (see :func:`binarize_mask`).

    A mask with values other than 0 and 255 (and not only 0 and 1) is thresholded at
    ``>= threshold``; the first such mask of the process logs one warning naming its file, later
    ones are counted silently (:func:`mask_threshold_summary`).
    """

    def __init__(self, keys: KeysCollection = "label", threshold: float = 128, allow_missing_keys: bool = True) -> None:
        """Set up the transform.

        Args:
            keys: the mask keys.
            threshold: the lesion threshold for non-binary masks (0..255 units).
            allow_missing_keys: items without a mask (unlabeled images) pass unchanged.
        """
        super().__init__(keys, allow_missing_keys)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 255:
            raise ValueError(f"BinarizeMaskd: threshold must be a number in (0, 255], got {threshold!r}")
        self.threshold = float(threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Binarize every mask under ``keys``."""
        d = dict(data)
        for key in self.key_iterator(d):
            name = None if isinstance(d[key], MetaTensor) else f"{key!r} of item {d.get('id', '(no id)')!r}"
            d[key] = binarize_mask(d[key], self.threshold, name=name)
        return d


# ----------------------------------------------------------------------------------------------------------------------
# Red-channel normalization
def normalize_red_channel(image: Any, eps: float = 1e-6, name: str | None = None) -> Any:
    """Standardize the red channel of a channel-first RGB image; green and blue are kept.

    ``R' = (R - mean(R)) / max(std(R), eps)`` over the image's pixels (population std), so the
    red channel has zero mean and unit standard deviation (a constant red channel becomes 0).

    Args:
        image: a float tensor (MetaTensor meta kept) or numpy array ``(3, ...)``.
        eps: the smallest standard deviation divided by.
        name: the image's name for errors.

    Returns:
        A float32 copy of the same kind.

    Raises:
        ValueError: not three channels.
    """
    if image.shape[0] != 3:
        file = str(image.meta.get("filename_or_obj", "")) if isinstance(image, MetaTensor) else ""
        label = file or name or "the image"
        raise ValueError(
            f"normalize_red_channel: {label} has shape {tuple(image.shape)}; expected 3 channels first (RGB)"
        )
    if isinstance(image, torch.Tensor):
        out = image.to(torch.float32).clone()
        red = out[0].double()
        out[0] = ((red - red.mean()) / max(float(red.std(unbiased=False)), eps)).to(torch.float32)
        return out
    out = np.array(image, dtype=np.float32, copy=True)
    red = out[0].astype(np.float64)
    out[0] = (red - red.mean()) / max(float(red.std()), eps)
    return out


class NormalizeRedChanneld(MapTransform):
    """Dictionary transform: standardize the red channel of RGB dermoscopy images (see :func:`normalize_red_channel`).

    Reference: D. N. H. Thanh, N. H. Hai, L. M. Hieu, P. Tiwari and V. B. S. Prasath, "Skin lesion
    segmentation method for dermoscopic images with convolutional neural networks and semantic
    segmentation" (U-Net with a VGG-16 encoder on ISIC images), named by the cross-teaching
    bundle's design for a red-channel normalization of RGB dermoscopy. We could not read the
    paper's description of that step (only its abstract was reachable), so this transform is our
    reading: per image, the red channel gets zero mean and unit standard deviation
    (epsilon-guarded), green and blue keep their values. The standardized red channel does not
    depend on an earlier linear intensity scaling, so it may come before or after
    ``ScaleIntensityRanged``; it is an option, not part of the default ISIC pipeline.
    """

    def __init__(self, keys: KeysCollection = "image", eps: float = 1e-6, allow_missing_keys: bool = False) -> None:
        """Set up the transform.

        Args:
            keys: the image keys (channel-first RGB).
            eps: the smallest standard deviation divided by.
            allow_missing_keys: do not raise when a key is absent.
        """
        super().__init__(keys, allow_missing_keys)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"NormalizeRedChanneld: eps must be a positive number, got {eps!r}")
        self.eps = float(eps)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Normalize every image under ``keys``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = normalize_red_channel(d[key], self.eps, name=f"{key!r} of item {d.get('id', '(no id)')!r}")
        return d
