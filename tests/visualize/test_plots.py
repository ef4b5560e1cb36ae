"""Tests of monai_ssl.visualize.plots."""

from __future__ import annotations

import matplotlib.image
import pytest
import torch

from monai_ssl.visualize import (
    confusion_matrix_figure,
    image_grid,
    multiclass_roc_figure,
    roc_figure,
    save_figure,
)


@pytest.mark.parametrize(
    "n, c, nrow, padding, shape",
    [
        (6, 1, 3, 2, (3, 2 * (4 + 2) + 2, 3 * (5 + 2) + 2)),
        (5, 3, 2, 0, (3, 3 * 4, 2 * 5)),
        (2, 1, 8, 1, (3, 4 + 2, 2 * (5 + 1) + 1)),  # fewer images than nrow: one short row
    ],
)
def test_grid_shape(n, c, nrow, padding, shape):
    grid = image_grid(torch.randn(n, c, 4, 5), nrow=nrow, padding=padding)
    assert tuple(grid.shape) == shape
    assert grid.dtype == torch.float32
    assert grid.min() >= 0.0 and grid.max() <= 1.0


def test_grid_values():
    images = torch.stack([torch.arange(4.0).view(1, 2, 2), torch.full((1, 2, 2), 7.0), torch.ones(1, 2, 2)])
    grid = image_grid(images, nrow=2, padding=1, pad_value=0.5)
    assert tuple(grid.shape) == (3, 7, 7)
    # each image normalised on its own; channel repeated to RGB
    expected0 = torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]])
    for ch in range(3):
        torch.testing.assert_close(grid[ch, 1:3, 1:3], expected0)
    assert torch.all(grid[:, 1:3, 4:6] == 0.0)  # constant image -> zeros
    assert torch.all(grid[:, 4:6, 4:6] == 0.5)  # empty cell -> pad value
    assert torch.all(grid[:, 0, :] == 0.5) and torch.all(grid[:, :, 3] == 0.5)  # borders


def test_grid_errors():
    with pytest.raises(ValueError, match="channels"):
        image_grid(torch.zeros(2, 2, 4, 4), nrow=2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        image_grid(torch.zeros(1, 4, 4), nrow=2)


def test_roc_png(tmp_path):
    fig = roc_figure([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0], 0.875, title="test")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert "AUC = 0.875" in [t.get_text() for t in ax.get_legend().get_texts()][0]
    path = save_figure(fig, tmp_path / "sub" / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    assert img.shape == (600, 600, 4)  # 5 x 5 inches at 120 dpi, RGBA
    assert [p.name for p in path.parent.iterdir()] == ["roc.png"]  # no temp file left behind


def test_confusion_matrix_png(tmp_path):
    fig = confusion_matrix_figure([[5, 1, 0], [2, 3, 0], [0, 0, 0]], ["CNV", "DME", "NORMAL"], title="cm")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true" and ax.get_title() == "cm"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CNV", "DME", "NORMAL"]
    assert [t.get_text() for t in ax.texts] == ["5", "1", "0", "2", "3", "0", "0", "0", "0"]  # row by row
    path = save_figure(fig, tmp_path / "cm.png")
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[2] == 4 and img.shape[0] >= 480
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]


def test_confusion_matrix_normalized():
    fig = confusion_matrix_figure([[3, 1], [0, 0]], normalize=True)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.75\n(3)", "0.25\n(1)", "0.00\n(0)", "0.00\n(0)"]  # empty row stays 0
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "1"]


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match="square"):
        confusion_matrix_figure([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="names"):
        confusion_matrix_figure([[1, 2], [3, 4]], ["a", "b", "c"])
    with pytest.raises(ValueError, match="non-negative"):
        confusion_matrix_figure([[1, -2], [3, 4]])


def test_multiclass_roc_png(tmp_path):
    probs = [[0.7, 0.2, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0], [0.3, 0.3, 0.4, 0.0], [0.5, 0.25, 0.25, 0.0]]
    fig = multiclass_roc_figure(probs, [0, 1, 2, 1], ["a", "b", "c", "d"], title="ovr")
    ax = fig.axes[0]
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[0] == "a (AUC = 1.000)" and texts[2] == "c (AUC = 1.000)"
    assert texts[1] == "b (AUC = 0.750)"  # b: positives .7 .25 vs negatives .2 .3 -> 3 of 4 pairs
    assert texts[3] == "d (AUC n/a)" and texts[4] == "chance"
    assert legend.get_title().get_text().startswith("macro AUC = ")
    path = save_figure(fig, tmp_path / "roc.png")
    assert matplotlib.image.imread(path).shape[2] == 4
    with pytest.raises(ValueError, match="sum to 1"):
        multiclass_roc_figure([[0.5, 0.6], [0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="names"):
        multiclass_roc_figure([[0.5, 0.5], [0.5, 0.5]], [0, 1], ["a"])
