"""Saliency of a model trained to find an object is larger on the object than on the background (issue 23)."""

from __future__ import annotations

import torch
from torch import nn

from monai_ssl.visualize import saliency_maps


def _batch(n: int, generator: torch.Generator, size: int = 24, side: int = 6):
    """Noise images; half carry a bright ``side`` x ``side`` square at a random place (label 1), with its mask."""
    images = torch.rand(n, 1, size, size, generator=generator) * 0.5
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    labels = torch.arange(n) % 2
    for i in range(n):
        if labels[i]:
            r, c = torch.randint(0, size - side + 1, (2,), generator=generator).tolist()
            images[i, :, r : r + side, c : c + side] += 0.5
            masks[i, :, r : r + side, c : c + side] = True
    return images, masks, labels


def test_saliency_is_larger_on_the_planted_square():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        images, _, labels = _batch(32, g)
        loss = nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    images, masks, labels = _batch(64, g)
    net.eval()
    with torch.no_grad():
        accuracy = (net(images).argmax(dim=1) == labels).float().mean().item()
    assert accuracy >= 0.9, f"the tiny CNN did not learn to find the square (accuracy {accuracy:.2f})"
    positive = labels == 1
    for method, layer in (("gradient", None), ("gradcam", "2")):
        maps = saliency_maps(net, images[positive], method, target_layer=layer, class_index=1)
        m = masks[positive]
        inside = (maps * m).sum() / m.sum()
        outside = (maps * ~m).sum() / (~m).sum()
        assert inside > 2 * outside, f"{method}: mean saliency inside {inside:.3f}, outside {outside:.3f}"
