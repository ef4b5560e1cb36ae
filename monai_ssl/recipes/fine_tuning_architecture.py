"""The classifier's architecture from the pre-trained encoder it starts from: fine-tuning needs no ``--method``.

Pre-training writes beside ``encoder.pt`` what it holds (``encoder.settings.json``:
:func:`~monai_ssl.recipes.exported_encoder_settings`): the method, the encoder's architecture, its input
channels, image size and stem, and whether BYOL's projector was exported. :func:`fine_tuning_architecture`
reads it, so a fine-tune left at ``encoder="auto"`` and ``head_input="auto"`` builds whatever the method
exported (a ResNet-50 from DINO, the ViT of CASS, BYOL's encoder with its projector), and refuses a setting
that contradicts the file, naming both.
"""

from __future__ import annotations

import os
from typing import Any

from monai_ssl.networks.model_settings import read_model_settings, settings_file

from .encoders import ENCODERS

__all__ = ["AUTO", "fine_tuning_architecture", "pretrained_encoder_settings"]

AUTO = "auto"
_NO_PATH = ("", "none", "null")


def pretrained_encoder_settings(path: str | os.PathLike | None) -> dict[str, Any]:
    """What pre-training wrote beside the encoder file ``path``; ``{}`` for no path or an encoder written without it."""
    if path is None or str(path).strip().lower() in _NO_PATH or not settings_file(path).is_file():
        return {}
    return read_model_settings(path)


def fine_tuning_architecture(
    pretrained_encoder: str | os.PathLike | None,
    encoder: str = AUTO,
    head_input: str = AUTO,
    small_images: bool | None = None,
    in_channels: int | None = None,
    image_size: int | None = None,
    default_encoder: str = "resnet18",
    default_head_input: str = "projector",
) -> dict[str, Any]:
    """The ``encoder``, ``small_images`` and ``head_input`` of a classifier that starts from ``pretrained_encoder``.

    ``"auto"`` (and ``None`` for ``small_images``) takes the pre-trained encoder's value, or the default when
    there is none (training from scratch, or an encoder file from before the settings were written).
    ``head_input="auto"`` is ``default_head_input`` unless the pre-training exported no projector (DINO,
    CASS): then ``"encoder"``.

    Args:
        pretrained_encoder: the encoder file fine-tuning loads (``models/encoder.pt``), or ``"none"``.
        encoder: ``"auto"`` or one of :data:`~monai_ssl.recipes.encoders.ENCODERS`.
        head_input: ``"auto"``, ``"encoder"`` or ``"projector"``.
        small_images: the small-image ResNet stem; None: as pre-trained.
        in_channels: the fine-tune's input channels, checked against the encoder's.
        image_size: the fine-tune's image side, checked against a ViT encoder's position embeddings.
        default_encoder: the architecture without pre-trained settings.
        default_head_input: the head input without pre-trained settings (and for a BYOL encoder).

    Returns:
        ``{"encoder": ..., "small_images": ..., "head_input": ..., "method": ...}`` (``method``: the pre-training
        method, ``None`` without one).

    Raises:
        ValueError: a setting that contradicts the pre-trained encoder (naming the file, both values and the
            method that wrote it), or ``head_input="projector"`` with an encoder exported without one.
    """
    saved = pretrained_encoder_settings(pretrained_encoder)
    method = saved.get("method")
    where = f"{os.fspath(pretrained_encoder)} (pre-trained with --method {method})" if saved else ""
    resolved_encoder = saved.get("encoder", default_encoder) if encoder == AUTO else encoder
    if resolved_encoder not in ENCODERS:
        raise ValueError(f"`encoder` must be {AUTO!r} or one of {ENCODERS}, got {encoder!r}.")
    clashes = []
    if saved and resolved_encoder != saved.get("encoder", resolved_encoder):
        clashes.append(f"it holds a {saved['encoder']} encoder and this config builds encoder={resolved_encoder!r}")
    if in_channels is not None and int(in_channels) != int(saved.get("in_channels", in_channels)):
        clashes.append(f"it takes in_channels={saved['in_channels']} and this config gives in_channels={in_channels}")
    if small_images is not None and saved and bool(small_images) != bool(saved.get("small_images", small_images)):
        clashes.append(f"it was built with small_images={saved['small_images']} and this config asks small_images={small_images}")
    if (image_size is not None and resolved_encoder.startswith("vit") and "image_size" in saved
            and int(image_size) != int(saved["image_size"])):
        clashes.append(
            f"its ViT position embeddings are made for image_size={saved['image_size']} and this config uses "
            f"image_size={image_size}"
        )
    if clashes:
        raise ValueError(
            f"{where}: {'; '.join(clashes)}. Leave `encoder`/`small_images` as 'auto'/null to use the pre-trained "
            "encoder's, or pre-train with the settings you want."
        )
    has_projector = bool(saved.get("projector", True))
    if head_input == AUTO:
        resolved_head = default_head_input if has_projector else "encoder"
    elif head_input == "projector" and not has_projector:
        raise ValueError(
            f"{where}: --method {method} exports no projector, so head_input='projector' has nothing to load; use "
            "head_input='encoder' (or 'auto')."
        )
    else:
        resolved_head = head_input
    stem = bool(saved.get("small_images", False)) if small_images is None else bool(small_images)
    return {"encoder": resolved_encoder, "small_images": stem, "head_input": resolved_head, "method": method}

