"""ROC figure and image grid.

Figures are built on an explicit ``FigureCanvasAgg`` and never touch pyplot's global state, so they
work headless and do not disturb an interactive session. matplotlib is imported lazily: importing
this module (for ``image_grid``) costs nothing beyond torch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from monai_ssl.utils import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["image_grid", "roc_figure", "save_figure"]


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
