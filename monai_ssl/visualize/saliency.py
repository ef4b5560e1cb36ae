"""Saliency maps of a classifier for its predicted class: input gradients, Grad-CAM for CNNs, Grad-CAM on ViT tokens.

Three methods, each returning one map per image, ``(B, 1, H, W)``, min-max scaled to ``[0, 1]`` per
image (a constant map becomes zeros):

* ``"gradient"``: the magnitude of the gradient of the class score with respect to the input pixels,
  the maximum over channels (Simonyan et al., "Deep Inside Convolutional Networks", ICLR workshop
  2014, Sec. 3.1); any differentiable network. This is what MONAI's
  :class:`monai.visualize.VanillaGrad` computes, batched here (``VanillaGrad`` takes one image at a
  time and leaves ``requires_grad`` set on the caller's tensor).
* ``"gradcam"``: Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2): the feature maps ``A_k`` of a
  convolutional layer weighted by the spatial mean of ``d score / d A_k``, summed over ``k``, passed
  through a ReLU and upsampled bilinearly to the image (MONAI's ``default_upsampler``). The values
  equal MONAI's :class:`monai.visualize.GradCAM` (the tests check it); it is computed here with
  hooks that are removed afterwards, because MONAI's ``ModelWithHooks`` registers hooks on the
  model that it never removes (each call adds two more) and turns the in-place ReLUs of the model
  off for good. For a :class:`~monai_ssl.networks.ResNetEncoder` the target layer is its last
  stage, found by :func:`gradcam_target_layer` (``"encoder.layer4"`` in an
  :class:`~monai_ssl.networks.EncoderClassifier`).
* ``"vit_gradcam"``: Grad-CAM on the patch tokens of a Vision Transformer, the common practice for
  ViTs (the ``reshape_transform`` recipe of the pytorch-grad-cam library; the Grad-CAM baseline of
  Chefer et al., "Transformer Interpretability Beyond Attention Visualization", CVPR 2021, Sec. 4):
  the tokens entering the attention of the last block (the output of its ``norm1``) take the role of
  the feature maps, their channel weights are the gradients averaged over the patch tokens, and the
  map on the patch grid is upsampled bilinearly to the image. The *input* of the last block is used,
  not its output: with class-token pooling the last block's output patch tokens never reach the class
  token (the final LayerNorm acts per token), so their gradient is zero.

The score is the logit of the predicted class (arg-max of the logits) unless ``class_index`` is
given. A single-logit (binary) network has two classes: 1 (score = the logit) and 0 (score = minus
the logit); its predicted class is 1 where the logit is positive.

The module also draws an image beside its saliency overlay (:func:`saliency_figure`,
:func:`save_saliency_png`) and picks the images to draw (:func:`confidence_extremes`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.networks.nets import ViT
from monai.visualize import default_upsampler
from torch import nn

from monai_ssl.networks import ResNetEncoder

from .outlines import outline_overlay
from .plots import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "SALIENCY_METHODS",
    "confidence_extremes",
    "figure_rgb",
    "gradcam_target_layer",
    "saliency_figure",
    "saliency_maps",
    "save_saliency_png",
    "volume_saliency_figure",
]

SALIENCY_METHODS = ("gradient", "gradcam", "vit_gradcam")


# ---------------------------------------------------------------- finding the layers
def _find_modules(model: nn.Module, kind: type) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the submodules of ``model`` (itself included, name ``""``) that are ``kind``."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, kind)]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def gradcam_target_layer(model: nn.Module) -> str:
    """The name of the last convolutional stage of the ResNet in ``model``, the usual Grad-CAM target layer.

    Grad-CAM is meant for the last convolutional layer, whose feature maps keep the spatial layout and
    carry the highest-level features (Selvaraju et al. 2017, Sec. 3). For the project's
    :class:`~monai_ssl.networks.ResNetEncoder` (a MONAI ``ResNet``) that is its ``layer4``.

    Args:
        model: a network holding exactly one MONAI ``ResNet`` (e.g. an ``EncoderClassifier`` over
            ``resnet18_encoder``/``resnet50_encoder``).

    Returns:
        The dotted module name, e.g. ``"encoder.layer4"`` (``"layer4"`` for a bare encoder).

    Raises:
        ValueError: ``model`` holds no ResNet, or several.
    """
    found = _find_modules(model, ResNetEncoder)
    if not found:
        from monai.networks.nets import ResNet

        found = _find_modules(model, ResNet)
    if len(found) != 1:
        what = "no ResNet" if not found else f"{len(found)} ResNets ({[n for n, _ in found]})"
        raise ValueError(
            f"gradcam_target_layer: {type(model).__name__} holds {what}; pass `target_layer=` the name of a "
            "convolutional layer (see model.named_modules())."
        )
    return _join(found[0][0], "layer4")


def _the_vit(model: nn.Module) -> tuple[str, ViT] | None:
    """``(name, vit)`` of the MONAI ``ViT`` in ``model``; None when there is none."""
    found = _find_modules(model, ViT)
    if len(found) > 1:
        raise ValueError(
            f"saliency_maps: {type(model).__name__} holds {len(found)} ViTs ({[n for n, _ in found]}); "
            "method='vit_gradcam' needs exactly one."
        )
    return found[0] if found else None


# ---------------------------------------------------------------- scores and hooks
def _check_images(images: Any, volumes: bool = False) -> torch.Tensor:
    ndims = (4, 5) if volumes else (4,)
    if not isinstance(images, torch.Tensor) or images.ndim not in ndims:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        also = " or volumes (B, C, S, H, W)" if volumes else " (volumes (B, C, S, H, W) with method='gradient')"
        raise ValueError(f"saliency_maps: `images` must be a tensor (B, C, H, W){also}, got {shape}.")
    if images.shape[0] == 0:
        raise ValueError("saliency_maps: `images` is an empty batch.")
    x = images.detach().as_subclass(torch.Tensor)
    return (x if x.is_floating_point() else x.float()).clone().requires_grad_(True)


def _class_scores(logits: torch.Tensor, class_index: int | Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    """``(B,)`` scores: the logit of the chosen (default: predicted) class; minus the logit for class 0 of a
    single-logit network."""
    if logits.ndim != 2:
        raise ValueError(f"saliency_maps: the model must return logits (B, K), got shape {tuple(logits.shape)}.")
    b, k = logits.shape
    n_classes = 2 if k == 1 else k
    if class_index is None:
        idx = (logits[:, 0] > 0).long() if k == 1 else logits.argmax(dim=1)
    else:
        idx = torch.as_tensor(class_index, dtype=torch.long, device=logits.device).reshape(-1)
        if idx.numel() == 1:
            idx = idx.expand(b)
        if idx.numel() != b:
            raise ValueError(f"saliency_maps: `class_index` has {idx.numel()} entries for a batch of {b} images.")
        if bool(((idx < 0) | (idx >= n_classes)).any()):
            raise ValueError(
                f"saliency_maps: `class_index` {idx.tolist()} out of range for a model with {n_classes} classes "
                f"({k} logit{'s' if k > 1 else ''})."
            )
    if k == 1:
        return torch.where(idx == 1, logits[:, 0], -logits[:, 0])
    return logits.gather(1, idx[:, None])[:, 0]


def _named_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        convs = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Sequential)) and n][-5:]
        raise ValueError(
            f"saliency_maps: {type(model).__name__} has no layer named {name!r} (`target_layer`); "
            f"names of its last convolutional layers and stages: {convs}."
        )
    return modules[name]


def _scores_and_activation(
    model: nn.Module, x: torch.Tensor, layer: nn.Module | None, class_index: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class scores ``(B,)`` of ``model(x)`` and the output of ``layer`` in that forward (hook removed after)."""
    captured: list[torch.Tensor] = []
    handle = None
    if layer is not None:
        handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        if handle is not None:
            handle.remove()
    activation = captured[-1] if captured else None
    if layer is not None and not isinstance(activation, torch.Tensor):
        raise ValueError(
            f"saliency_maps: the target layer {type(layer).__name__} gave no tensor output in the forward."
        )
    return _class_scores(logits, class_index), activation


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map of ``(B, 1, H, W)`` (or ``(B, 1, S, H, W)``) to ``[0, 1]``; a constant map becomes zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    view = (-1,) + (1,) * (maps.ndim - 1)
    lo = flat.min(dim=1).values.view(view)
    span = flat.max(dim=1).values.view(view) - lo
    scaled = (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny)
    return torch.where(span > 0, scaled, torch.zeros_like(maps)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- the three methods
def _gradient(model: nn.Module, x: torch.Tensor, class_index: Any) -> torch.Tensor:
    scores, _ = _scores_and_activation(model, x, None, class_index)
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad.abs().amax(dim=1, keepdim=True)


def _gradcam(model: nn.Module, x: torch.Tensor, target_layer: str, class_index: Any) -> torch.Tensor:
    layer = _named_module(model, target_layer)
    scores, acti = _scores_and_activation(model, x, layer, class_index)
    if acti.ndim != 4:
        raise ValueError(
            f"saliency_maps: method='gradcam' needs feature maps (B, C, h, w) at `target_layer` {target_layer!r}, "
            f"got shape {tuple(acti.shape)}; choose a convolutional layer."
        )
    (grad,) = torch.autograd.grad(scores.sum(), acti, allow_unused=True)
    if grad is None:
        raise ValueError(f"saliency_maps: the class score does not depend on `target_layer` {target_layer!r}.")
    weights = grad.mean(dim=(2, 3), keepdim=True)  # alpha_k of Selvaraju et al., Eq. 1
    cam = torch.relu((weights * acti).sum(dim=1, keepdim=True))  # Eq. 2
    return default_upsampler(tuple(x.shape[2:]))(cam)


def _patch_grid(height: int, width: int, n_patches: int) -> tuple[int, int]:
    """The ``(rows, columns)`` of square patches that tile an ``height x width`` image into ``n_patches``."""
    side = round(math.sqrt(height * width / n_patches)) if n_patches > 0 else 0
    if side < 1 or height % side or width % side or (height // side) * (width // side) != n_patches:
        raise ValueError(
            f"saliency_maps: {n_patches} patch tokens do not tile a {height}x{width} image with square patches."
        )
    return height // side, width // side


def _vit_gradcam(model: nn.Module, x: torch.Tensor, vit_name: str, vit: ViT, class_index: Any) -> torch.Tensor:
    if x.ndim != 4:
        raise ValueError("saliency_maps: method='vit_gradcam' supports 2D images only.")
    last = len(vit.blocks) - 1
    layer = vit.blocks[last].norm1  # the tokens entering the last block's attention
    scores, tokens = _scores_and_activation(model, x, layer, class_index)
    (grad,) = torch.autograd.grad(scores.sum(), tokens, allow_unused=True)
    if grad is None:
        raise ValueError(f"saliency_maps: the class score does not depend on {_join(vit_name, f'blocks.{last}')}.")
    n_cls = 1 if getattr(vit, "classification", False) else 0
    patches, grad = tokens[:, n_cls:], grad[:, n_cls:]  # (B, N, D)
    rows, cols = _patch_grid(x.shape[2], x.shape[3], patches.shape[1])
    weights = grad.mean(dim=1, keepdim=True)  # (B, 1, D): Grad-CAM weights over the patch "positions"
    cam = torch.relu((weights * patches).sum(dim=2))  # (B, N), row-major patch order
    return default_upsampler(tuple(x.shape[2:]))(cam.reshape(-1, 1, rows, cols))


def saliency_maps(
    model: nn.Module,
    images: torch.Tensor,
    method: str = "gradient",
    target_layer: str | None = None,
    class_index: int | Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Saliency maps of ``model`` for a batch of images, for the predicted (or a given) class.

    The model runs in eval mode (restored afterwards) with gradients on, also inside ``torch.no_grad``;
    only the input and the target activation get gradients, so the parameters' ``.grad`` stay as they
    are, and no hook is left on the model. See the module docstring for the methods and references.

    Args:
        model: a classifier returning logits ``(B, K)`` (``K = 1`` for a binary single-logit network).
        images: ``(B, C, H, W)`` float tensor on the model's device; ``"gradient"`` also takes volumes
            ``(B, C, S, H, W)`` (e.g. a :class:`~monai_ssl.networks.SliceEncoder` classifier's input), whose
            map ``(B, 1, S, H, W)`` is scaled per volume.
        method: ``"gradient"`` (any network), ``"gradcam"`` (CNNs) or ``"vit_gradcam"`` (ViTs).
        target_layer: for ``"gradcam"``, the dotted name of a convolutional layer in ``model``; by default
            the last stage of its ResNet (:func:`gradcam_target_layer`). Ignored by the other methods.
        class_index: the class to explain: one int for all images, or one per image; ``None`` (default)
            explains each image's predicted class.

    Returns:
        ``(B, 1, H, W)`` float tensor in ``[0, 1]``, each map min-max scaled (a constant map is zeros),
        detached, on the device of ``images``.

    Raises:
        ValueError: an unknown ``method``; ``"gradcam"`` on a ViT or ``"vit_gradcam"`` on a network
            without a ViT (the message names both); a ``target_layer`` not in the model or without
            feature maps; no ResNet to find the default target layer in; images not ``(B, C, H, W)``;
            a ``class_index`` out of range or of another length than the batch.
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"saliency_maps: `method` must be one of {SALIENCY_METHODS}, got {method!r}.")
    x = _check_images(images, volumes=method == "gradient")
    vit = _the_vit(model) if method != "gradient" else None
    net = type(model).__name__
    if method == "gradcam" and vit is not None and target_layer is None:
        raise ValueError(
            f"saliency_maps: method='gradcam' needs a CNN, but {net} is a Vision Transformer (MONAI ViT at "
            f"{vit[0] or 'the top level'!r}); use method='vit_gradcam' or 'gradient' for it."
        )
    if method == "vit_gradcam" and vit is None:
        raise ValueError(
            f"saliency_maps: method='vit_gradcam' needs a Vision Transformer, but {net} holds no MONAI ViT "
            "(a CNN?); use method='gradcam' or 'gradient' for it."
        )
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if method == "gradient":
                maps = _gradient(model, x, class_index)
            elif method == "gradcam":
                layer = target_layer if target_layer is not None else gradcam_target_layer(model)
                maps = _gradcam(model, x, layer, class_index)
            else:
                maps = _vit_gradcam(model, x, vit[0], vit[1], class_index)
    finally:
        model.train(was_training)
    return _normalise(maps.detach().float())


# ---------------------------------------------------------------- choosing and drawing
def confidence_extremes(probabilities: Any, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the ``count`` most and the ``count`` least confident predictions.

    The confidence of a prediction is its largest class probability; for a vector of binary
    probabilities ``p`` (of the positive class) it is ``max(p, 1 - p)``. Ties keep the order of the
    images.

    Args:
        probabilities: ``(N,)`` binary or ``(N, K)`` class probabilities (array or tensor).
        count: how many images of each kind (at most ``N`` are returned).

    Returns:
        ``(most, least)``: int64 index arrays, the most confident first in ``most`` and the least
        confident first in ``least`` (they overlap when ``2 * count > N``).

    Raises:
        ValueError: ``count`` < 1, probabilities that are not 1-D/2-D, empty, or not finite.
    """
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ValueError(f"confidence_extremes: `count` must be an integer >= 1, got {count!r}.")
    p = probabilities.detach().cpu().numpy() if isinstance(probabilities, torch.Tensor) else np.asarray(probabilities)
    p = p.astype(np.float64)
    if p.ndim not in (1, 2) or p.shape[0] == 0 or (p.ndim == 2 and p.shape[1] == 0):
        raise ValueError(f"confidence_extremes: `probabilities` must be (N,) or (N, K) with N >= 1, got {p.shape}.")
    if not np.isfinite(p).all():
        raise ValueError("confidence_extremes: `probabilities` holds NaN or inf.")
    confidence = np.maximum(p, 1.0 - p) if p.ndim == 1 else p.max(axis=1)
    n = min(int(count), confidence.shape[0])
    most = np.argsort(-confidence, kind="stable")[:n]
    least = np.argsort(confidence, kind="stable")[:n]
    return most.astype(np.int64), least.astype(np.int64)


def _map_2d(saliency: Any) -> np.ndarray:
    s = saliency.detach().cpu().float().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency, float)
    s = s.reshape(s.shape[-2:]) if s.ndim >= 2 and int(np.prod(s.shape[:-2])) == 1 else s
    if s.ndim != 2:
        raise ValueError(
            f"saliency_figure: `saliency` must be one map (H, W), (1, H, W) or (1, 1, H, W), got {s.shape}."
        )
    return s


def saliency_figure(image: Any, saliency: Any, title: str = "", mask: Any | None = None, alpha: float = 0.5) -> Figure:
    """The image beside the image overlaid with its saliency map (``jet`` colours, a colour bar).

    The image is shown as :func:`~monai_ssl.visualize.outline_overlay` shows it (uint8 as is, else its
    1st-99th percentile window); with a ``mask`` (e.g. the lesion) its outline is drawn in green on both
    panels, so a reader sees how much of the saliency falls on it. The map is resized bilinearly to the
    picture when sizes differ.

    Args:
        image: ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` array or tensor.
        saliency: one map ``(h, w)``, ``(1, h, w)`` or ``(1, 1, h, w)``, values in ``[0, 1]``.
        title: the figure title (e.g. the true and predicted class and the probability).
        mask: optional ``(H, W)`` or ``(1, H, W)`` mask whose outline is drawn.
        alpha: opacity of the saliency colours.

    Returns:
        A ``matplotlib.figure.Figure`` (8 x 4 inches) on an Agg canvas (no pyplot involved).

    Raises:
        ValueError: an image or map of another shape (see ``outline_overlay``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    picture = outline_overlay(image, truth=mask)
    s = torch.as_tensor(_map_2d(saliency), dtype=torch.float32)
    if tuple(s.shape) != picture.shape[:2]:
        s = default_upsampler(picture.shape[:2])(s[None, None])[0, 0]
    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.imshow(picture)
    left.set_title("image")
    right.imshow(picture)
    shown = right.imshow(s.numpy(), cmap="jet", alpha=float(alpha), vmin=0.0, vmax=1.0)
    right.set_title("saliency")
    fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
    for ax in (left, right):
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_saliency_png(
    path: str | os.PathLike, image: Any, saliency: Any, title: str = "", mask: Any | None = None
) -> Path:
    """Write :func:`saliency_figure` as a 960 x 480 PNG (8 x 4 inches at 120 dpi) to ``path``; return the path."""
    return save_figure(saliency_figure(image, saliency, title=title, mask=mask), path)


def volume_saliency_figure(
    volume: Any, saliency: Any, title: str = "", mask: Any | None = None, max_slices: int = 8, alpha: float = 0.5
) -> Figure:
    """The slices of a volume (top row) over their saliency maps (bottom row), for a per-slice classifier.

    With more than ``max_slices`` slices, the ``max_slices`` with the largest saliency mass (sum of the map
    over the slice) are shown, in slice order, each titled with its index. The ``mask`` outline is drawn as
    in :func:`saliency_figure`.

    Args:
        volume: ``(C, S, H, W)`` (slices on axis 1) array or tensor.
        saliency: ``(1, S, H, W)`` or ``(S, H, W)`` map in ``[0, 1]``.
        title: the figure title.
        mask: optional ``(1, S, H, W)`` or ``(S, H, W)`` mask.
        max_slices: the most slices shown.
        alpha: opacity of the saliency colours.

    Raises:
        ValueError: shapes that do not agree.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    v = torch.as_tensor(np.asarray(volume.detach().cpu() if isinstance(volume, torch.Tensor) else volume, np.float32))
    s = torch.as_tensor(_map_2d_stack(saliency))
    if v.ndim != 4 or tuple(v.shape[1:]) != tuple(s.shape):
        raise ValueError(
            f"volume_saliency_figure: `volume` must be (C, S, H, W) and `saliency` (1, S, H, W) of the same S, H, W; "
            f"got {tuple(v.shape)} and {tuple(s.shape)}."
        )
    m = None if mask is None else torch.as_tensor(_map_2d_stack(mask))
    mass = s.reshape(s.shape[0], -1).sum(dim=1)
    shown = sorted(torch.argsort(-mass, stable=True)[: int(max_slices)].tolist())
    fig = Figure(figsize=(2.0 * len(shown), 4.4))
    FigureCanvasAgg(fig)
    for col, k in enumerate(shown):
        picture = outline_overlay(v[:, k], truth=None if m is None else m[k])
        top, bottom = fig.add_subplot(2, len(shown), col + 1), fig.add_subplot(2, len(shown), len(shown) + col + 1)
        top.imshow(picture)
        top.set_title(f"slice {k}", fontsize=8)
        bottom.imshow(picture)
        bottom.imshow(s[k].numpy(), cmap="jet", alpha=float(alpha), vmin=0.0, vmax=1.0)
        top.set_axis_off()
        bottom.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _map_2d_stack(value: Any) -> np.ndarray:
    """``(S, H, W)`` float32 of ``(S, H, W)`` or ``(1, S, H, W)``."""
    a = value.detach().cpu().float().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float32)
    a = a[0] if a.ndim == 4 and a.shape[0] == 1 else a
    if a.ndim != 3:
        raise ValueError(f"volume_saliency_figure: expected a map or mask (S, H, W) or (1, S, H, W), got {a.shape}.")
    return a.astype(np.float32)


def figure_rgb(fig: Figure) -> np.ndarray:
    """The pixels of a figure on an Agg canvas as a ``(H, W, 3)`` uint8 array (e.g. for TensorBoard)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
