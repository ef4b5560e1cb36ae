"""A task classifier on a (pre-trained) encoder, and loading a BYOL encoder into it."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["EncoderClassifier", "init_from_pretrained", "load_pretrained_encoder"]


class EncoderClassifier(nn.Module):
    """``encoder`` followed by a new linear task head: ``(B, ...) -> (B, out_channels)`` logits.

    For binary tasks use ``out_channels=1`` with ``BCEWithLogitsLoss``. The head replaces BYOL's
    projector and predictor, which are not used downstream.

    Args:
        encoder: maps the input to ``(B, F)`` features, e.g. a
            :class:`~monai_ssl.networks.SliceEncoder` for volumes.
        out_channels: number of logits.
        feature_dim: ``F``; read from ``encoder.out_features`` when not given.
        dropout: dropout probability before the head.
        freeze_encoder: keep the encoder fixed (linear probing); its batch norm stays in eval mode.
    """

    def __init__(
        self,
        encoder: nn.Module,
        out_channels: int = 1,
        feature_dim: int | None = None,
        dropout: float = 0.0,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        feature_dim = feature_dim if feature_dim is not None else getattr(encoder, "out_features", None)
        if feature_dim is None:
            raise ValueError("EncoderClassifier needs `feature_dim` when the encoder has no `out_features` attribute.")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(feature_dim), out_channels)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> EncoderClassifier:  # noqa: D102
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.dropout(self.encoder(x)))


def _encoder_state(checkpoint: Mapping, path: str) -> Mapping[str, torch.Tensor]:
    """Find the encoder weights in a file written by ``BYOL`` pre-training."""
    if "network" in checkpoint and isinstance(checkpoint["network"], Mapping):
        checkpoint = checkpoint["network"]  # a full training checkpoint of the BYOL bundle
    prefix = "online_encoder."
    if any(k.startswith(prefix) for k in checkpoint):
        return {k[len(prefix) :]: v for k, v in checkpoint.items() if k.startswith(prefix)}
    if all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise ValueError(f"{path} holds neither an encoder state dict nor a BYOL checkpoint (keys: {list(checkpoint)[:5]}).")


def load_pretrained_encoder(encoder: nn.Module, path: str | os.PathLike | None, strict: bool = True) -> nn.Module:
    """Load BYOL pre-trained weights into ``encoder`` and return it.

    ``path`` may be the encoder file that pre-training exports (``models/encoder.pt``, the online
    encoder's state dict) or a full BYOL training checkpoint (its ``online_encoder.*`` weights
    are used). ``None``, ``""``, ``"none"`` or ``"null"`` leave the encoder as initialised
    (training from scratch; the strings let a command line say so). Loads with
    ``torch.load(..., weights_only=True)``.

    Raises:
        FileNotFoundError: the file does not exist (pre-training has not been run).
        ValueError: the file holds no matching encoder weights.
    """
    if path is None or str(path).strip().lower() in ("", "none", "null"):
        return encoder
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"pre-trained encoder not found: {path}. Run the pre-training bundle first (train.json writes "
            "models/encoder.pt), point `pretrained_encoder` at an encoder file, or set it to null to train from "
            "random initialisation."
        )
    state = _encoder_state(torch.load(path, map_location="cpu", weights_only=True), path)
    result = encoder.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise ValueError(
            f"{path} does not match the encoder: missing keys {result.missing_keys[:5]}, unexpected keys "
            f"{result.unexpected_keys[:5]} (was it pre-trained with the same network definition?)."
        )
    return encoder


def init_from_pretrained(model: nn.Module, path: str | os.PathLike | None, strict: bool = True) -> nn.Module:
    """Load BYOL encoder weights into ``model.encoder`` (see :func:`load_pretrained_encoder`); return ``model``.

    Meant for bundle configs: ``"$monai_ssl.networks.init_from_pretrained(@network_def, @pretrained_encoder)"``.
    """
    if not hasattr(model, "encoder"):
        raise TypeError(f"{type(model).__name__} has no `encoder` to load pre-trained weights into.")
    load_pretrained_encoder(model.encoder, path, strict=strict)
    return model
