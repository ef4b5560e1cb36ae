"""A task classifier on a (pre-trained) encoder, optionally through BYOL's projector, and loading BYOL weights."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from .heads import MLPHead
from .weights import non_finite_entries

__all__ = ["EncoderClassifier", "init_from_pretrained", "load_pretrained_encoder", "trainable_parameters"]

_HEAD_INPUTS = ("encoder", "projector")  # what the task head of EncoderClassifier reads

_NO_PATH = ("", "none", "null")


class EncoderClassifier(nn.Module):
    """``encoder`` (optionally followed by BYOL's projector) and a new linear task head: ``(B, ...) -> (B, C)`` logits.

    ``head_input="encoder"`` (default): ``head(dropout(encoder(x)))``; the head replaces BYOL's
    projector and predictor. ``head_input="projector"``: ``head(dropout(projector(encoder(x))))``,
    with a projector built like BYOL's (``MLPHead(feature_dim, hidden_dim, projection_dim)``, the
    projector g of Grill et al. 2020, Sec. 3.3), as in Feng et al., "Integration of Self-Supervised
    BYOL in Semi-Supervised Medical Image Recognition" (Sec. 4.2.1), whose classification head has
    "input dimensions aligned with the output of the projection layer". Load the pre-trained encoder
    and projector with :func:`init_from_pretrained`. The projector has batch normalisation; a
    training batch of a single sample goes through it with the running statistics.

    For binary tasks use ``out_channels=1`` with ``BCEWithLogitsLoss``.

    Args:
        encoder: maps the input to ``(B, F)`` features, e.g. a
            :class:`~monai_ssl.networks.SliceEncoder` for volumes.
        out_channels: number of logits.
        feature_dim: ``F``; read from ``encoder.out_features`` when not given.
        dropout: dropout probability before the head.
        freeze_encoder: keep the encoder, and the projector if any, fixed (linear probing); their
            batch norm stays in eval mode.
        head_input: ``"encoder"`` or ``"projector"``: what the task head reads.
        hidden_dim: hidden size of the projector (BYOL's ``hidden_dim``); for ``head_input="projector"``.
        projection_dim: output size of the projector (BYOL's ``projection_dim``), the head's input size;
            for ``head_input="projector"``.
        projector: a ready projector module instead of the built one (``head_input="projector"`` only);
            its output size must be ``projection_dim``.

    Raises:
        ValueError: unknown ``head_input``, a ``projector`` with ``head_input="encoder"``, or no
            ``feature_dim``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        out_channels: int = 1,
        feature_dim: int | None = None,
        dropout: float = 0.0,
        freeze_encoder: bool = False,
        head_input: str = "encoder",
        hidden_dim: int = 4096,
        projection_dim: int = 256,
        projector: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if head_input not in _HEAD_INPUTS:
            raise ValueError(f"`head_input` must be one of {_HEAD_INPUTS}, got {head_input!r}.")
        if projector is not None and head_input != "projector":
            raise ValueError("a `projector` was given with head_input='encoder'; pass head_input='projector'.")
        feature_dim = feature_dim if feature_dim is not None else getattr(encoder, "out_features", None)
        if feature_dim is None:
            raise ValueError("EncoderClassifier needs `feature_dim` when the encoder has no `out_features` attribute.")
        self.encoder = encoder
        self.projector = _make_projector(head_input, projector, int(feature_dim), hidden_dim, projection_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(feature_dim) if self.projector is None else projection_dim, out_channels)
        self.head_input = head_input
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the pre-trained part: the encoder and, with ``head_input="projector"``, the projector."""
        params = list(self.encoder.parameters())
        return params + (list(self.projector.parameters()) if self.projector is not None else [])

    def train(self, mode: bool = True) -> EncoderClassifier:  # noqa: D102
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
            if self.projector is not None:
                self.projector.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features = self.encoder(x)
        if self.projector is not None:
            if not torch.jit.is_scripting() and self.projector.training and features.shape[0] == 1:
                features = self._project_one(features)
            else:
                features = self.projector(features)
        return self.head(self.dropout(features))

    @torch.jit.unused
    def _project_one(self, features: torch.Tensor) -> torch.Tensor:
        """The projector's output for a training batch of one sample, with the running batch-norm statistics.

        Batch statistics of a single sample are undefined (PyTorch raises), and the last batch of an
        epoch holds one sample whenever the training set is one more than a multiple of the batch
        size, which changes from round to round in pseudo-labeling.
        """
        self.projector.eval()
        try:
            return self.projector(features)
        finally:
            self.projector.train()


def _make_projector(
    head_input: str, projector: nn.Module | None, feature_dim: int, hidden_dim: int, projection_dim: int
) -> nn.Module | None:
    """The projector of ``head_input="projector"``: the given module or one like BYOL's ``online_projector``."""
    if head_input != "projector":
        return None
    return projector if projector is not None else MLPHead(feature_dim, hidden_dim, projection_dim)


def _is_no_path(path: str | os.PathLike | None) -> bool:
    """``None``, ``""``, ``"none"`` or ``"null"`` (any case): no file, so no weights to load."""
    return path is None or str(path).strip().lower() in _NO_PATH


def _read(path: str | os.PathLike, missing_hint: str) -> Mapping:
    """``torch.load(path, weights_only=True)`` on the CPU, with a clear error for a missing file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(missing_hint.format(path=path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _byol_weights(checkpoint: Mapping, prefix: str) -> dict[str, torch.Tensor] | None:
    """The ``prefix``-ed weights of a BYOL state dict or training checkpoint, without the prefix; ``None`` if absent.

    ``prefix`` is ``"online_encoder."`` or ``"online_projector."``; a training checkpoint is
    ``{"network": BYOL state dict, ...}``.
    """
    if "network" in checkpoint and isinstance(checkpoint["network"], Mapping):
        checkpoint = checkpoint["network"]  # a full training checkpoint of the BYOL bundle
    if not any(k.startswith(prefix) for k in checkpoint):
        return None
    return {k[len(prefix) :]: v for k, v in checkpoint.items() if k.startswith(prefix)}


def _module_state(checkpoint: Mapping, path: str | os.PathLike, prefix: str, what: str) -> Mapping[str, torch.Tensor]:
    """The weights of one BYOL part in a file: a plain state dict, or the ``prefix`` part of a BYOL checkpoint."""
    state = _byol_weights(checkpoint, prefix)
    if state is not None:
        return state
    if all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise ValueError(f"{path} holds neither {what} weights nor a BYOL checkpoint (keys: {list(checkpoint)[:5]}).")


def _load_state(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike, what: str, strict: bool
) -> None:
    """``module.load_state_dict(state)``; a clear error when shapes differ, with ``strict`` keys do not match, or
    the weights hold NaN/inf (the export of a diverged run)."""
    broken = non_finite_entries(state)
    if broken:
        raise ValueError(
            f"{os.fspath(path)} holds NaN/inf weights ({broken[:3]}): the {what} comes from a pre-training that "
            "diverged. Pre-train again (lower learning rate) or point to another file."
        )
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes differ (raised whatever `strict` says)
        raise ValueError(f"{os.fspath(path)} does not match the {what}: {e}") from e
    if strict and (result.missing_keys or result.unexpected_keys):
        raise ValueError(
            f"{os.fspath(path)} does not match the {what}: missing keys {result.missing_keys[:5]}, unexpected keys "
            f"{result.unexpected_keys[:5]} (was it pre-trained with the same network definition?)."
        )


_ENCODER_MISSING = (
    "pre-trained encoder not found: {path}. Run the pre-training bundle first (train.json writes "
    "models/encoder.pt), point `pretrained_encoder` at an encoder file, or set it to null to train from "
    "random initialisation."
)
_PROJECTOR_MISSING = (
    "pre-trained projector not found: {path}. Pre-training writes it when its EncoderExporter has "
    "`projector_path` set; or pass a full BYOL training checkpoint, or projector_path='none' to keep the "
    "projector randomly initialised."
)


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
    if _is_no_path(path):
        return encoder
    state = _module_state(_read(path, _ENCODER_MISSING), path, "online_encoder.", "encoder")
    _load_state(encoder, state, path, "encoder", strict)
    return encoder


def _projector_state(
    encoder_path: str | os.PathLike, projector_path: str | os.PathLike | None
) -> tuple[Mapping[str, torch.Tensor], str | os.PathLike]:
    """The pre-trained projector weights, from ``projector_path`` or else from a BYOL checkpoint at ``encoder_path``."""
    if projector_path is not None:
        checkpoint = _read(projector_path, _PROJECTOR_MISSING)
        return _module_state(checkpoint, projector_path, "online_projector.", "projector"), projector_path
    state = _byol_weights(_read(encoder_path, _ENCODER_MISSING), "online_projector.")
    if state is None:
        raise ValueError(
            f"the model has a projector (head_input='projector') but {os.fspath(encoder_path)} holds no projector "
            "weights (an encoder file). Pass projector_path= the projector file that pre-training writes with "
            "EncoderExporter(..., projector_path='models/projector.pt'), or a full BYOL training checkpoint as the "
            "path, or projector_path='none' to keep the projector randomly initialised."
        )
    return state, encoder_path


def init_from_pretrained(
    model: nn.Module,
    path: str | os.PathLike | None,
    strict: bool = True,
    projector_path: str | os.PathLike | None = None,
) -> nn.Module:
    """Load BYOL weights into ``model.encoder`` and, if it has one, ``model.projector``; return ``model``.

    The encoder is loaded from ``path`` as by :func:`load_pretrained_encoder`; ``None``, ``""``,
    ``"none"`` or ``"null"`` leave the whole model as initialised (training from scratch, the projector
    too). For a model with a projector (``EncoderClassifier(..., head_input="projector")``, Feng et al.
    Sec. 4.2.1) the pre-trained online projector g is loaded as well, from ``projector_path`` (the file
    :class:`~monai_ssl.handlers.EncoderExporter` writes with ``projector_path``, or a full BYOL
    checkpoint) or, when that is ``None``, from ``path`` if ``path`` is a full BYOL checkpoint.
    ``projector_path="none"`` (or ``""``, ``"null"``) keeps the projector randomly initialised.
    ``projector_path`` is ignored for a model without projector, so a config may always pass it.

    Meant for bundle configs: ``"$monai_ssl.networks.init_from_pretrained(@network_def, @pretrained_encoder,
    projector_path=@pretrained_projector)"``.

    Raises:
        TypeError: ``model`` has no ``encoder``.
        FileNotFoundError: a weights file does not exist.
        ValueError: a file holds no matching weights, or the model has a projector, ``projector_path``
            is ``None`` and ``path`` is an encoder file (no projector weights in it).
    """
    if not hasattr(model, "encoder"):
        raise TypeError(f"{type(model).__name__} has no `encoder` to load pre-trained weights into.")
    load_pretrained_encoder(model.encoder, path, strict=strict)
    projector = getattr(model, "projector", None)
    if projector is None or _is_no_path(path) or (projector_path is not None and _is_no_path(projector_path)):
        return model
    state, source = _projector_state(path, projector_path)
    _load_state(projector, state, source, "projector", strict)
    return model


def trainable_parameters(network: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimizer updates: those that require gradients (a frozen encoder's do not)."""
    return [p for p in network.parameters() if p.requires_grad]
