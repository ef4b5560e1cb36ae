"""Loading dermoscopy images and lesion masks (ISIC and alike) in MONAI pipelines, with their channels fixed.

Loading goes through MONAI's ``LoadImaged`` with a ``PILReader`` whose ``converter`` fixes the
channels right after PIL opens the file:

* :func:`to_rgb`: every image becomes RGB (alpha dropped, CMYK/YCbCr/palette/grayscale converted);
* :func:`to_mask_channel`: every mask becomes one channel.

The arrays keep MONAI's ``PILReader`` convention: spatial axes ``(W, H)`` (``reverse_indexing``),
channel first, so a loaded image is ``(3, W, H)`` and its mask ``(1, W, H)``, and ``SaveImaged``
with MONAI's ``PILWriter`` writes a mask back in the orientation it was read. :class:`LoadDermoscopyd`
builds both loaders (then :class:`~monai_ssl.transforms.BinarizeMaskd` makes the mask {0, 1}); in a bundle JSON the converters can also be used directly::

    {"_target_": "LoadImaged", "keys": "image", "ensure_channel_first": true,
     "reader": "$monai.data.PILReader(converter=monai_ssl.transforms.to_rgb)"}
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from monai.config import DtypeLike
from monai.data import PILReader
from monai.transforms import LoadImaged, MapTransform

from .image2d import load_image_2d

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["LoadDermoscopyd", "to_mask_channel", "to_rgb"]

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
        if isinstance(d[self.image_key], np.ndarray):  # an image held in memory (a MedMNIST archive), channel-last
            name = f"{self.image_key!r} of item {d.get('id', '(no id)')!r}"
            d[self.image_key] = load_image_2d(d[self.image_key], 3, name=name).transpose(-1, -2)  # MONAI's (W, H)
        else:
            d = self._load_image(d, reader=self._image_reader)
        if self._load_label is not None:
            d = self._load_label(d, reader=self._mask_reader)
        return d
