"""ImageNet weights in the torchvision and timm key layouts, loaded into the project's ResNet and ViT encoders.

The published ImageNet checkpoints of the S4MI baseline (Singh et al. 2022, the "ImageNet
transfer" rows) are ResNet-50 and ViT-B/16 files in two key layouts:

* torchvision/timm ResNet (``conv1``, ``bn1``, ``layerN.M.convK``/``bnK``, ``layerN.M.downsample.0|1``,
  ``fc``): timm's ``resnet*`` use torchvision's names (timm's ``resnet18`` points at torchvision's
  file), and so do DINO's ResNet-50 backbones. :class:`~monai_ssl.networks.ResNetEncoder`, a MONAI
  ``ResNet``, has the same names, so only the classifier ``fc`` is dropped.
* torchvision ViT (``class_token``, ``conv_proj``, ``encoder.pos_embedding``,
  ``encoder.layers.encoder_layer_N.{ln_1, self_attention.in_proj_*, self_attention.out_proj, ln_2,
  mlp.0|linear_1, mlp.3|linear_2}``, ``encoder.ln``, ``heads``) and timm ViT (``cls_token``,
  ``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
  mlp.fc2}``, ``norm``, ``head``; DINO's ViT backbones use it too). Both are mapped onto MONAI's
  ``ViT`` inside :class:`~monai_ssl.networks.ViTEncoder`.

Tensor layouts (read from MONAI 1.x ``blocks/selfattention.py``, ``patchembedding.py``,
``transformerblock.py`` and ``nets/vit.py``): MONAI's ``attn.qkv`` output is split as
``(qkv, heads, head_dim)``, the order of torchvision's ``in_proj_weight`` (query, key, value stacked,
heads contiguous) and timm's ``qkv``, so the matrices are copied as they are. The patch projection is
the same ``Conv2d(kernel=stride=patch)`` with row-major flattening. MONAI keeps no position embedding
for the class token: the class token enters the blocks as ``cls_token`` alone, while torchvision and
timm add ``pos_embed[:, 0]`` to it, so that embedding is added into ``cls_token`` (exact). The patch
position embeddings are resized to the encoder's patch grid (:func:`interpolate_position_embeddings`)
when the image sizes differ. torchvision and timm build their ViT LayerNorms with ``eps=1e-6``,
MONAI with PyTorch's ``1e-5``; the loader sets ``1e-6`` on the encoder's LayerNorms by default.

A 3-channel (RGB) first convolution loaded into a 1-channel encoder is summed over its input
channels, as timm's ``adapt_input_conv`` does: a gray image ``x`` then gets exactly the response the
RGB network gives to ``(x, x, x)``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .resnet import ResNetEncoder
from .vit_encoder import ViTEncoder, interpolate_position_embeddings

__all__ = [
    "LAYOUTS",
    "PretrainedLoadReport",
    "convert_pretrained_state",
    "load_imagenet_weights",
    "read_checkpoint",
    "require_pretrained_weights",
]

LAYOUTS = ("resnet", "torchvision_vit", "timm_vit")
"""Layouts recognised: torchvision/timm ResNet (same names), torchvision ViT, timm ViT."""

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "teacher")
"""Entries of a checkpoint dict that hold the state dict (looked into in this order)."""

PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")
"""Prefixes stripped when every key has them (DataParallel/DDP, ``torch.compile``, Lightning, DINO)."""

_RESNET_NAMES = {
    ("basic", (2, 2, 2, 2)): "ResNet-18",
    ("basic", (3, 4, 6, 3)): "ResNet-34",
    ("bottleneck", (3, 4, 6, 3)): "ResNet-50",
    ("bottleneck", (3, 4, 23, 3)): "ResNet-101",
    ("bottleneck", (3, 8, 36, 3)): "ResNet-152",
}
_VIT_NAMES = {192: "ViT-Ti", 384: "ViT-S", 768: "ViT-B", 1024: "ViT-L", 1280: "ViT-H"}

_VIT = "vit."
_CLS = _VIT + "cls_token"
_POS = _VIT + "patch_embedding.position_embeddings"
_PATCH = _VIT + "patch_embedding.patch_embeddings."
_POS_SOURCE = "<position embeddings>"  # placeholder target of the foreign position embeddings

# foreign block suffix -> MONAI TransformerBlock suffix
_TORCHVISION_BLOCK = {
    "ln_1.weight": "norm1.weight",
    "ln_1.bias": "norm1.bias",
    "self_attention.in_proj_weight": "attn.qkv.weight",
    "self_attention.in_proj_bias": "attn.qkv.bias",
    "self_attention.out_proj.weight": "attn.out_proj.weight",
    "self_attention.out_proj.bias": "attn.out_proj.bias",
    "ln_2.weight": "norm2.weight",
    "ln_2.bias": "norm2.bias",
    "mlp.0.weight": "mlp.linear1.weight",
    "mlp.0.bias": "mlp.linear1.bias",
    "mlp.3.weight": "mlp.linear2.weight",
    "mlp.3.bias": "mlp.linear2.bias",
    "mlp.linear_1.weight": "mlp.linear1.weight",  # torchvision before 0.13 (MLPBlock version 1)
    "mlp.linear_1.bias": "mlp.linear1.bias",
    "mlp.linear_2.weight": "mlp.linear2.weight",
    "mlp.linear_2.bias": "mlp.linear2.bias",
}
_TIMM_BLOCK = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "attn.qkv.weight": "attn.qkv.weight",
    "attn.qkv.bias": "attn.qkv.bias",
    "attn.proj.weight": "attn.out_proj.weight",
    "attn.proj.bias": "attn.out_proj.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "mlp.fc1.weight": "mlp.linear1.weight",
    "mlp.fc1.bias": "mlp.linear1.bias",
    "mlp.fc2.weight": "mlp.linear2.weight",
    "mlp.fc2.bias": "mlp.linear2.bias",
}
_TORCHVISION_TOP = {
    "class_token": _CLS,
    "conv_proj.weight": _PATCH + "weight",
    "conv_proj.bias": _PATCH + "bias",
    "encoder.pos_embedding": _POS_SOURCE,
    "encoder.ln.weight": _VIT + "norm.weight",
    "encoder.ln.bias": _VIT + "norm.bias",
}
_TIMM_TOP = {
    "cls_token": _CLS,
    "patch_embed.proj.weight": _PATCH + "weight",
    "patch_embed.proj.bias": _PATCH + "bias",
    "pos_embed": _POS_SOURCE,
    "norm.weight": _VIT + "norm.weight",
    "norm.bias": _VIT + "norm.bias",
}
_TORCHVISION_BLOCK_KEY = re.compile(r"^encoder\.layers\.encoder_layer_(\d+)\.(.+)$")
_TIMM_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
_HEADS = {"resnet": ("fc.",), "torchvision_vit": ("heads.",), "timm_vit": ("head.", "head_dist.", "pre_logits.")}


@dataclass
class PretrainedLoadReport:
    """What :func:`load_imagenet_weights` did.

    Attributes:
        source: the file (or ``"<state dict>"``) the weights came from.
        layout: one of :data:`LAYOUTS`.
        architecture: the checkpoint's network in words, e.g. ``"ResNet-50 (bottleneck blocks [3, 4, 6, 3], ...)"``.
        mapped: checkpoint key -> encoder key of every tensor loaded.
        missing: encoder keys the checkpoint did not fill (they keep their initial values);
            ``num_batches_tracked`` and MONAI's unused ``norm_cross_attn`` are not counted.
        unexpected: checkpoint keys not loaded (the classifier head, and with
            ``strict_architecture=False`` anything the encoder has no place for or of another shape).
        notes: the conversions made (channel sum, position resize, class-token position, LayerNorm eps).
    """

    source: str
    layout: str
    architecture: str
    mapped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the log: source, layout, counts, the missing/unexpected keys and the notes."""
        lines = [
            f"{self.source}: {self.architecture} in the {self.layout} layout; {len(self.mapped)} tensors loaded, "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected."
        ]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                more = f" (and {len(keys) - 8} more)" if len(keys) > 8 else ""
                lines.append(f"  {label}: {', '.join(keys[:8])}{more}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _is_state(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(torch.is_tensor(v) for v in value.values())


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    stripped = True
    while stripped:
        stripped = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def read_checkpoint(path_or_state: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """The bare state dict of a checkpoint and a name for it in messages.

    Reads a file with ``torch.load(..., map_location="cpu", weights_only=True)``, looks into the
    wrapper entries :data:`WRAPPER_KEYS` (``{"state_dict": ...}``, ``{"model": ...}``, nested) and
    strips :data:`PREFIXES` shared by every key (``module.`` of DataParallel/DDP, ...). Non-tensor
    entries beside the tensors (epoch counters, optimizer settings) are ignored.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read with ``weights_only=True`` or holds no state dict.
    """
    if isinstance(path_or_state, Mapping):
        source, loaded = "<state dict>", path_or_state
    else:
        source = os.fspath(path_or_state)
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"pretrained weights: {source} does not exist; pass the path of an ImageNet checkpoint."
            )
        try:
            loaded = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unpickling failure is the same user error
            raise ValueError(
                f"pretrained weights: {source} cannot be read with torch.load(weights_only=True) "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); expected a PyTorch state dict."
            ) from err
    while isinstance(loaded, Mapping) and not _is_state(loaded):
        inner = next((loaded[k] for k in WRAPPER_KEYS if isinstance(loaded.get(k), Mapping)), None)
        if inner is None:
            tensors = {k: v for k, v in loaded.items() if torch.is_tensor(v)}
            loaded = tensors if tensors else None
            break
        loaded = inner
    if not _is_state(loaded):
        raise ValueError(
            f"pretrained weights: {source} holds no state dict (a dict of tensors, bare or under one of "
            f"{list(WRAPPER_KEYS)})."
        )
    return _strip_prefixes({str(k): v for k, v in loaded.items()}), source


def _detect_layout(state: Mapping[str, torch.Tensor]) -> str | None:
    if "conv1.weight" in state and any(k.startswith("layer1.0.") for k in state):
        return "resnet"
    if "class_token" in state and any(_TORCHVISION_BLOCK_KEY.match(k) for k in state):
        return "torchvision_vit"
    if "cls_token" in state and any(_TIMM_BLOCK_KEY.match(k) for k in state):
        return "timm_vit"
    return None


def _rename(state: Mapping[str, torch.Tensor], layout: str) -> tuple[dict[str, str], list[str]]:
    """Checkpoint key -> encoder key (before tensor conversions), and the keys with no place."""
    if layout == "resnet":
        return {k: k for k in state if not k.startswith(_HEADS[layout])}, []
    top, block, pattern = (
        (_TORCHVISION_TOP, _TORCHVISION_BLOCK, _TORCHVISION_BLOCK_KEY)
        if layout == "torchvision_vit"
        else (_TIMM_TOP, _TIMM_BLOCK, _TIMM_BLOCK_KEY)
    )
    names, unplaced = {}, []
    for key in state:
        match = pattern.match(key)
        if key in top:
            names[key] = top[key]
        elif match and match.group(2) in block:
            names[key] = f"{_VIT}blocks.{match.group(1)}.{block[match.group(2)]}"
        elif not key.startswith(_HEADS[layout]):
            unplaced.append(key)
    return names, unplaced


def _describe(shapes: Mapping[str, tuple[int, ...]], family: str) -> tuple[tuple, str]:
    """A comparable signature and a description of a network from its (encoder-named) tensor shapes."""
    if family == "resnet":
        depths = tuple(
            len({int(m.group(1)) for k in shapes if (m := re.match(rf"^layer{s}\.(\d+)\.", k))}) for s in range(1, 5)
        )
        kind = "bottleneck" if any(re.match(r"^layer\d+\.\d+\.conv3\.weight$", k) for k in shapes) else "basic"
        stem = shapes.get("conv1.weight", ())
        inner = shapes.get("layer1.0.conv1.weight", (0,))[0]
        name = _RESNET_NAMES.get((kind, depths), "ResNet")
        kernel = "x".join(str(s) for s in stem[2:])
        width = stem[0] if stem else "?"
        text = f"{name} ({kind} blocks {list(depths)}, {width}-channel {kernel} stem, layer1 width {inner})"
        return (family, kind, depths, tuple(stem[:1]) + tuple(stem[2:]), inner), text
    hidden = shapes.get(_CLS, shapes.get(_PATCH + "weight", (0,)))[-1 if _CLS in shapes else 0]
    layers = len({int(m.group(1)) for k in shapes if (m := re.match(rf"^{re.escape(_VIT)}blocks\.(\d+)\.", k))})
    patch = tuple(shapes.get(_PATCH + "weight", ())[2:])
    mlp = shapes.get(f"{_VIT}blocks.0.mlp.linear1.weight", (0,))[0]
    size = "x".join(str(p) for p in patch)
    name = f"{_VIT_NAMES.get(hidden, 'ViT')}/{patch[0] if len(set(patch)) == 1 else size}"
    text = f"{name} (hidden {hidden}, {layers} blocks, MLP {mlp}, {size} patches)"
    return (family, hidden, layers, patch, mlp), text


def _first_conv_key(family: str) -> str:
    return "conv1.weight" if family == "resnet" else _PATCH + "weight"


def _square_grid(count: int) -> int | None:
    side = math.isqrt(count)
    return side if side * side == count and side > 0 else None


def _fit_positions(
    converted: dict[str, torch.Tensor], encoder: ViTEncoder, source_key: str, notes: list[str]
) -> None:
    """Replace the foreign position embeddings by MONAI's patch ones; fold the class-token one into ``cls_token``."""
    positions = converted.pop(_POS_SOURCE)
    count = positions.shape[1]
    if count > 1 and _square_grid(count - 1):
        class_position, positions = positions[:, :1], positions[:, 1:]
    elif _square_grid(count):
        class_position = None
    else:
        raise ValueError(
            f"pretrained weights: {source_key} holds {count} position embeddings, neither a square patch grid "
            "nor one plus a square grid; only 2D ViTs with square grids are supported."
        )
    side = _square_grid(positions.shape[1])
    if len(encoder.patch_grid) != 2:
        raise ValueError(
            f"pretrained weights: the checkpoint is a 2D ViT but the encoder has a {len(encoder.patch_grid)}D "
            f"patch grid {encoder.patch_grid}; build vit_encoder(spatial_dims=2)."
        )
    if (side, side) != tuple(encoder.patch_grid):
        notes.append(
            f"{source_key}: position embeddings resized from a {side}x{side} to the encoder's "
            f"{encoder.patch_grid[0]}x{encoder.patch_grid[1]} patch grid (bicubic)."
        )
    converted[_POS] = interpolate_position_embeddings(positions, (side, side), encoder.patch_grid)
    if encoder.pool != "cls":
        converted.pop(_CLS, None)
        notes.append("the encoder pools by mean and has no class token: the checkpoint's class token is not loaded.")
    elif class_position is not None and _CLS in converted:
        converted[_CLS] = converted[_CLS] + class_position
        notes.append(
            f"{source_key}[:, 0] (the class token's position embedding, which MONAI's ViT does not keep) "
            "added into vit.cls_token."
        )


def convert_pretrained_state(
    encoder: nn.Module, path_or_state: str | os.PathLike | Mapping[str, Any], strict_architecture: bool = True
) -> tuple[dict[str, torch.Tensor], PretrainedLoadReport]:
    """The checkpoint's tensors under the encoder's key names and layouts, without loading them.

    See :func:`load_imagenet_weights` for the arguments and errors; the returned report has
    ``missing`` filled, and the state can be given to ``encoder.load_state_dict(state, strict=False)``.
    """
    if isinstance(encoder, ResNetEncoder):
        family = "resnet"
    elif isinstance(encoder, ViTEncoder):
        family = "vit"
    else:
        raise TypeError(
            f"load_imagenet_weights: the encoder must be a ResNetEncoder (resnet18_encoder/resnet50_encoder) or a "
            f"ViTEncoder (vit_encoder), got {type(encoder).__name__}."
        )
    state, source = read_checkpoint(path_or_state)
    layout = _detect_layout(state)
    expected = encoder.state_dict()
    expected_shapes = {k: tuple(v.shape) for k, v in expected.items()}
    encoder_signature, encoder_text = _describe(expected_shapes, family)
    if layout is None:
        raise ValueError(
            f"pretrained weights: {source} holds keys of no known layout (first keys: {list(state)[:5]}); the encoder "
            f"is a {encoder_text}. Expected torchvision/timm ResNet keys (conv1.weight, layer1.0.conv1.weight, fc.*), "
            "torchvision ViT keys (class_token, conv_proj.*, encoder.layers.encoder_layer_0.*) or timm ViT keys "
            "(cls_token, pos_embed, patch_embed.proj.*, blocks.0.*)."
        )
    names, unplaced = _rename(state, layout)
    no_place = {_POS_SOURCE} | ({_CLS} if family == "vit" else set())  # a mean-pool ViT drops the class token
    unplaced += [k for k, t in names.items() if t not in expected_shapes and t not in no_place]
    held_family = "resnet" if layout == "resnet" else "vit"
    shapes = {target: tuple(state[key].shape) for key, target in names.items()}
    if _POS_SOURCE in shapes:
        shapes.pop(_POS_SOURCE)
    held_signature, held_text = _describe(shapes, held_family)
    mismatch = held_family != family or held_signature != encoder_signature
    if not mismatch and strict_architecture and unplaced:
        raise ValueError(
            f"pretrained weights: {source} holds a {held_text} in the {layout} layout with {len(unplaced)} tensors "
            f"the encoder ({encoder_text}) has no place for (e.g. {unplaced[:3]}): a variant the project does not "
            "build. Pass strict_architecture=False to load the rest and list those as unexpected."
        )
    notes: list[str] = []
    heads = [k for k in state if k.startswith(_HEADS[layout])]
    if heads:
        notes.append(f"classifier head {sorted({k.rsplit('.', 1)[0] for k in heads})} dropped.")
    converted = {target: state[key] for key, target in names.items()}
    first = _first_conv_key(family)
    if first in converted and first in expected:
        held, wanted = converted[first].shape[1], expected[first].shape[1]
        if held == 3 and wanted == 1:
            converted[first] = converted[first].sum(dim=1, keepdim=True)
            source_first = next(k for k, t in names.items() if t == first)
            notes.append(
                f"{source_first}: the 3-channel (RGB) kernel summed over its input channels into the encoder's "
                "1 channel (a gray image x gets the response of the RGB network to (x, x, x))."
            )
    if held_family == family == "vit" and _POS_SOURCE in converted:
        source_pos = next(k for k, t in names.items() if t == _POS_SOURCE)
        if not mismatch:
            _fit_positions(converted, encoder, source_pos, notes)
        names[source_pos] = _POS
    mismatched = [
        f"{k} {tuple(v.shape)} (encoder {expected_shapes[k]})"
        for k, v in converted.items()
        if k in expected_shapes and tuple(v.shape) != expected_shapes[k]
    ]
    if mismatch:
        raise ValueError(
            f"pretrained weights: {source} holds a {held_text} in the {layout} layout, but the encoder is a "
            f"{encoder_text}; build the encoder the checkpoint was trained as (resnet50_encoder() for ResNet-50, "
            "vit_encoder(hidden_size=768, num_layers=12, num_heads=12, patch_size=16) for ViT-B/16) or pass a "
            "checkpoint of the encoder's architecture."
        )
    if strict_architecture and mismatched:
        raise ValueError(
            f"pretrained weights: {source} holds a {held_text} in the {layout} layout whose tensors do not fit the "
            f"encoder ({encoder_text}): {'; '.join(mismatched[:3])}"
            f"{' and more' if len(mismatched) > 3 else ''}. Build the encoder with the checkpoint's settings "
            "(in_channels 3 or 1, the stem, qkv bias) or pass strict_architecture=False to skip those tensors."
        )
    skipped = {k for k, v in converted.items() if k not in expected_shapes or tuple(v.shape) != expected_shapes[k]}
    converted = {k: v for k, v in converted.items() if k not in skipped}
    mapped = {key: target for key, target in names.items() if target in converted}
    unexpected = [key for key in state if key not in mapped]
    unused = re.compile(r"(\.num_batches_tracked$|\.norm_cross_attn\.)")
    missing = [k for k in expected if k not in converted and not unused.search(k)]
    report = PretrainedLoadReport(source, layout, held_text, mapped, missing, unexpected, notes)
    return converted, report


def load_imagenet_weights(
    encoder: nn.Module,
    path_or_state: str | os.PathLike | Mapping[str, Any],
    strict_architecture: bool = True,
    match_layer_norm_eps: bool = True,
    log: Callable[[str], None] | None = None,
) -> PretrainedLoadReport:
    """Load an ImageNet ResNet or ViT checkpoint in the torchvision or timm key layout into a project encoder.

    The ImageNet-transfer baseline of S4MI (Singh et al. 2022): the layout is recognised from the
    keys (module docstring), the keys and tensors mapped onto the encoder, the classifier head
    dropped, a 3-channel first convolution summed into a 1-channel encoder, ViT position embeddings
    resized to the encoder's patch grid and the class token's position embedding folded into
    ``cls_token``. Nothing is downloaded.

    Args:
        encoder: a :class:`ResNetEncoder` (``resnet50_encoder``/``resnet18_encoder``) or a
            :class:`ViTEncoder` (``vit_encoder``), filled in place.
        path_or_state: the checkpoint file (read with ``weights_only=True``), or a state dict.
        strict_architecture: raise when the checkpoint holds tensors the encoder has no place for
            or of other shapes; False loads what fits and lists the rest as ``unexpected``.
        match_layer_norm_eps: for ViTs, set ``eps=1e-6`` (torchvision's and timm's) on the
            encoder's LayerNorms so it computes what the published network computes.
        log: called with :meth:`PretrainedLoadReport.summary` (e.g. ``logger.info``).

    Returns:
        The :class:`PretrainedLoadReport`.

    Raises:
        TypeError: ``encoder`` is not a project ResNet or ViT encoder.
        FileNotFoundError: the file does not exist.
        ValueError: the file is no state dict, its keys are of no known layout, or it holds another
            architecture (a ResNet-18 for a ResNet-50, a ViT-S for a ViT-B, a ResNet for a ViT); one
            message names the file, what it holds and what the encoder is.
    """
    converted, report = convert_pretrained_state(encoder, path_or_state, strict_architecture)
    result = encoder.load_state_dict(converted, strict=False)
    if result.unexpected_keys:  # cannot happen: convert_pretrained_state keeps only the encoder's keys
        raise RuntimeError(f"load_imagenet_weights: keys not in the encoder {result.unexpected_keys[:3]}")
    if match_layer_norm_eps and isinstance(encoder, ViTEncoder):
        for module in encoder.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = 1e-6
        report.notes.append("LayerNorm eps set to 1e-6 (torchvision's and timm's ViT; MONAI's default is 1e-5).")
    if log is not None:
        log(report.summary())
    return report


def require_pretrained_weights(path: str | os.PathLike | None) -> Path:
    """Check the ``pretrained_weights`` setting of the ``imagenet_transfer`` baseline names an existing file.

    Nothing is downloaded here: the user downloads an ImageNet checkpoint once (see
    :func:`load_imagenet_weights` for the formats) and passes ``--pretrained_weights PATH``.

    Returns:
        The path.

    Raises:
        ValueError: no path given (the message says what to pass and where such weights come from).
        FileNotFoundError: the file does not exist.
    """
    if path is None or str(path).strip().lower() in ("", "none", "null"):
        raise ValueError(
            "imagenet_transfer needs `--pretrained_weights PATH`: an ImageNet checkpoint of the encoder "
            "(torchvision's resnet50-*.pth / vit_b_16-*.pth, or a timm resnet50 / vit_base_patch16_224 state dict "
            "saved with torch.save); nothing is downloaded at run time"
        )
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"`pretrained_weights` file not found: {file}")
    return file
