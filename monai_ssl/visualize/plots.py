"""ROC and confusion-matrix figures and image grid.

Figures are built on an explicit ``FigureCanvasAgg`` and never touch pyplot's global state, so they
work headless and do not disturb an interactive session. matplotlib is imported lazily: importing
this module (for ``image_grid``) costs nothing beyond torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from monai_ssl.utils import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_matrix_figure", "image_grid", "multiclass_roc_figure", "roc_figure", "save_figure"]


def roc_figure(fpr: Any, tpr: Any, auc: float | None, title: str = "ROC curve") -> Figure:
    """Draw a ROC curve with the chance diagonal on a square ``[0, 1] x [0, 1]`` axes.

    Args:
        fpr: false positive rates (x), e.g. from :func:`monai_ssl.metrics.roc_curve`.
        tpr: true positive rates (y), same length.
        auc: area under the curve, shown in the legend (``None`` shows "n/a").
        title: axes title.

    Returns:
        A ``matplotlib.figure.Figure`` attached to an Agg canvas (no pyplot involved).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fpr_arr = np.asarray(fpr, dtype=np.float64).ravel()
    tpr_arr = np.asarray(tpr, dtype=np.float64).ravel()
    if fpr_arr.shape != tpr_arr.shape:
        raise ValueError(f"`fpr` and `tpr` differ in length: {fpr_arr.shape[0]} != {tpr_arr.shape[0]}.")
    fig = Figure(figsize=(5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    auc_text = "n/a" if auc is None else f"{auc:.3f}"
    ax.plot(fpr_arr, tpr_arr, color="tab:blue", lw=2, label=f"ROC (AUC = {auc_text})")
    ax.plot([0.0, 1.0], [0.0, 1.0], color="grey", lw=1, ls="--", label="chance")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def confusion_matrix_figure(
    matrix: Any, class_names: Sequence[str] | None = None, normalize: bool = False, title: str = "Confusion matrix"
) -> Figure:
    """Draw a confusion matrix as a heat map with the count written in every cell.

    Rows are true classes ("true", y axis), columns predicted classes ("predicted", x axis), as in
    :func:`monai_ssl.metrics.multiclass_classification_metrics` and, for ``K = 2``, the ``[[tn, fp], [fn, tp]]``
    of :func:`monai_ssl.metrics.binary_classification_metrics`.

    Args:
        matrix: ``K x K`` non-negative counts.
        class_names: ``K`` tick labels; default ``"0"``, ..., ``"K-1"``.
        normalize: colour by the fraction of each true class (row), i.e. per-class recall on the
            diagonal, and write ``fraction`` above ``(count)``; an empty row stays 0. With ``False`` the
            colour follows the raw counts.
        title: axes title.

    Returns:
        A ``matplotlib.figure.Figure`` attached to an Agg canvas (no pyplot involved).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"`matrix` must be a square K x K array, got shape {cm.shape}.")
    if not np.all(np.isfinite(cm)) or cm.min() < 0:
        raise ValueError("`matrix` must hold non-negative counts.")
    k = cm.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"`class_names` has {len(names)} names for a {k} x {k} matrix.")
    rows = cm.sum(axis=1, keepdims=True)
    values = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)

    side = max(4.0, 1.5 + 0.7 * k)
    fig = Figure(figsize=(side + 1.0, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count")
    fontsize = 10 if k <= 10 else 7
    for i in range(k):
        for j in range(k):
            count = int(round(cm[i, j]))
            text = f"{values[i, j]:.2f}\n({count})" if normalize else str(count)
            colour = "white" if values[i, j] > 0.5 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    long_names = max(len(n) for n in names) > 4
    ax.set_xticklabels(names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def multiclass_roc_figure(
    probabilities: Any,
    labels: Any,
    class_names: Sequence[str] | None = None,
    title: str = "ROC curves (one-vs-rest)",
) -> Figure:
    """Draw the one-vs-rest ROC curve of every class, its AUC in the legend, and the chance diagonal.

    A class absent from ``labels`` (or that is every label) has no curve; its legend entry reads
    "AUC n/a". The legend title gives the macro AUC over the classes with a curve.

    Args:
        probabilities: shape ``(N, K)``, rows summing to 1 (softmax applied).
        labels: class indices in ``[0, K)``, shape ``(N,)`` or ``(N, 1)``.
        class_names: ``K`` names for the legend; default ``"0"``, ..., ``"K-1"``.
        title: axes title.

    Returns:
        A ``matplotlib.figure.Figure`` attached to an Agg canvas (no pyplot involved).

    Raises:
        ValueError: on invalid input, see :func:`monai_ssl.metrics.one_vs_rest_roc_curves`.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from monai_ssl.metrics import one_vs_rest_roc_curves

    curves = one_vs_rest_roc_curves(probabilities, labels)
    k = len(curves)
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"`class_names` has {len(names)} names for {k} classes (columns of `probabilities`).")
    fig = Figure(figsize=(5.5, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    palette = colormaps["tab10" if k <= 10 else "tab20"]
    aucs = []
    for c, (name, curve) in enumerate(zip(names, curves)):
        colour = palette(c % palette.N)
        if curve is None:
            ax.plot([], [], color=colour, lw=2, label=f"{name} (AUC n/a)")
            continue
        fpr, tpr, auc = curve
        aucs.append(auc)
        ax.plot(fpr, tpr, color=colour, lw=2, label=f"{name} (AUC = {auc:.3f})")
    ax.plot([0.0, 1.0], [0.0, 1.0], color="grey", lw=1, ls="--", label="chance")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    macro = f"macro AUC = {np.mean(aucs):.3f}" if aucs else "macro AUC n/a"
    ax.legend(loc="lower right", title=macro, fontsize=8 if k > 6 else 10)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Save ``fig`` as a PNG (120 dpi) to ``path`` atomically; parent folders are created.

    Args:
        fig: the figure to save.
        path: destination file.

    Returns:
        ``path`` as a ``Path``.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return Path(path)


def image_grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a batch of images into one RGB picture.

    Each image is min-max normalised to ``[0, 1]`` independently (a constant image becomes zeros);
    single-channel images are repeated to RGB. Images are placed row by row, ``nrow`` per row, with
    ``padding`` pixels of ``pad_value`` around and between them; unused cells are ``pad_value``.

    Args:
        images: tensor of shape ``(N, C, H, W)`` with ``C`` in ``{1, 3}``.
        nrow: number of images per row of the grid.
        padding: border width in pixels.
        pad_value: value in ``[0, 1]`` of the border and empty cells.

    Returns:
        Float32 tensor of shape ``(3, rows * (H + padding) + padding, nrow' * (W + padding) + padding)``
        with ``rows = ceil(N / nrow)`` and ``nrow' = min(nrow, N)``, on the device of ``images``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"`images` must be a tensor of shape (N, C, H, W), got {shape}.")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"`images` must have 1 or 3 channels, got {c}.")
    if n == 0:
        raise ValueError("`images` is empty.")
    if nrow < 1 or padding < 0:
        raise ValueError(f"`nrow` must be >= 1 and `padding` >= 0, got nrow={nrow}, padding={padding}.")
    if not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"`pad_value` must be in [0, 1], got {pad_value}.")

    x = images.detach().float()
    flat = x.reshape(n, -1)
    lo = flat.min(dim=1).values.view(n, 1, 1, 1)
    span = flat.max(dim=1).values.view(n, 1, 1, 1) - lo
    scaled = (x - lo) / span.clamp_min(torch.finfo(torch.float32).tiny)
    x = torch.where(span > 0, scaled, torch.zeros_like(x)).clamp(0.0, 1.0)
    if c == 1:
        x = x.expand(n, 3, h, w)

    ncols = min(nrow, n)
    nrows = math.ceil(n / ncols)
    grid = torch.full(
        (3, nrows * (h + padding) + padding, ncols * (w + padding) + padding), float(pad_value), device=x.device
    )
    for i in range(n):
        top = padding + (i // ncols) * (h + padding)
        left = padding + (i % ncols) * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid
