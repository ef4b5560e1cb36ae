"""Distances, nearest centroids, k-means++ seeding and the farthest-row choice."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.clustering import farthest_rows, kmeans_plus_plus, nearest_centroid, squared_distances
from monai_ssl.clustering import seeding


def test_squared_distances_by_hand():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    c = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    assert torch.equal(squared_distances(f, c), torch.tensor([[0.0, 9.0], [25.0, 16.0]]))
    assert squared_distances(f.half(), c).dtype == torch.float32


def test_squared_distances_stay_float32_under_autocast():
    f, c = torch.tensor([[1000.0, 0.0]]), torch.tensor([[1000.5, 0.0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 would round 1000.5 to 1000
        assert squared_distances(f, c).item() == pytest.approx(0.25)


def test_squared_distances_refuse_bad_shapes():
    with pytest.raises(ValueError, match="features have 3 channels but the centroids have 2"):
        squared_distances(torch.zeros(4, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"centroids must be an \(N, D\) tensor"):
        squared_distances(torch.zeros(4, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="floating-point"):
        squared_distances(torch.zeros(4, 2, dtype=torch.int32), torch.zeros(2, 2))


def test_nearest_centroid_matches_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(seeding, "CHUNK_ROWS", 3)  # 10 rows in 4 chunks
    g = torch.Generator().manual_seed(0)
    f, c = torch.randn(10, 5, generator=g), torch.randn(4, 5, generator=g)
    labels, dists = nearest_centroid(f, c)
    brute = ((f[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    assert torch.equal(labels, brute.argmin(1))
    assert torch.allclose(dists, brute.min(1).values, atol=1e-5)


def test_kmeans_plus_plus_picks_each_distinct_row_once():
    points = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 7.0]])
    rows = points.repeat(20, 1)
    seeds = kmeans_plus_plus(rows, 3, torch.Generator().manual_seed(0))
    assert sorted(map(tuple, seeds.tolist())) == sorted(map(tuple, points.tolist()))


def test_kmeans_plus_plus_is_deterministic_for_a_seed():
    rows = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    a = kmeans_plus_plus(rows, 5, torch.Generator().manual_seed(7))
    b = kmeans_plus_plus(rows, 5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (5, 4)


def test_kmeans_plus_plus_refuses_too_few_distinct_rows():
    rows = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).repeat(5, 1)
    with pytest.raises(ValueError, match="needs 3 distinct feature rows, but the 10 rows given have only 2"):
        kmeans_plus_plus(rows, 3, torch.Generator().manual_seed(0))


def test_farthest_rows():
    assert farthest_rows(torch.tensor([1.0, 5.0, 3.0]), 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="cannot re-seed 4 empty clusters from only 3 feature rows"):
        farthest_rows(torch.tensor([1.0, 5.0, 3.0]), 4)
