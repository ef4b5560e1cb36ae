"""Tests of ``score_pool``: probabilities of a tiny classifier over a loader of dict batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from monai_ssl.pseudo_label import logits_to_probabilities, score_pool


def _loader(n: int = 7, features: int = 4, batch_size: int = 3) -> tuple[DataLoader, torch.Tensor, list[str]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=g)
    ids = [f"item{i:02d}" for i in range(n)]
    items = [{"image": x[i], "id": ids[i]} for i in range(n)]
    return DataLoader(items, batch_size=batch_size, shuffle=False), x, ids


def _net(out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, out))


def test_matches_manual_softmax_in_order():
    loader, x, ids = _loader()
    net = _net(3)
    probs, got_ids = score_pool(net, loader, "cpu")
    net.eval()
    with torch.no_grad():
        expected = torch.softmax(net(x), dim=1).numpy()
    assert probs.dtype == np.float32 and probs.shape == (7, 3)
    assert got_ids == ids
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_binary_single_logit():
    loader, x, _ = _loader()
    net = _net(1)
    probs, _ = score_pool(net, loader, torch.device("cpu"))
    net.eval()
    with torch.no_grad():
        p = torch.sigmoid(net(x)).squeeze(1).numpy()
    assert probs.shape == (7, 2)
    np.testing.assert_allclose(probs[:, 1], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs[:, 0], 1 - p, rtol=1e-5, atol=1e-6)


def test_restores_each_module_mode():
    loader, _, _ = _loader()
    net = _net(2)
    net.train()
    net[1].eval()  # a frozen batch norm stays frozen
    score_pool(net, loader, "cpu")
    assert net.training and net[0].training and not net[1].training and net[2].training
    net.eval()
    score_pool(net, loader, "cpu")
    assert not any(m.training for m in net.modules())


def test_restores_mode_on_error():
    net = _net(2).train()
    loader = DataLoader([{"image": torch.zeros(4), "name": "x"}], batch_size=1)
    with pytest.raises(KeyError, match="'id'"):
        score_pool(net, loader, "cpu")
    assert net.training


def test_amp_on_cpu_gives_float32_probabilities():
    loader, _, _ = _loader()
    probs, _ = score_pool(_net(2), loader, "cpu", amp=True)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_empty_loader_and_bad_output():
    probs, ids = score_pool(_net(2), [], "cpu")
    assert probs.shape == (0, 0) and ids == []
    with pytest.raises(ValueError, match="shape"):
        logits_to_probabilities(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="tensor"):
        logits_to_probabilities({"logits": torch.zeros(2, 2)})  # type: ignore[arg-type]
