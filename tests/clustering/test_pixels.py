"""Pixel helpers: flatten, sample, label every pixel, cluster shares."""

from __future__ import annotations

import os

import pytest
import torch

from monai_ssl.clustering import assign_pixels, cluster_shares, flatten_pixels, sample_pixels


def _map(b: int = 2, d: int = 3, h: int = 2, w: int = 4) -> torch.Tensor:
    return torch.arange(b * d * h * w, dtype=torch.float32).reshape(b, d, h, w)  # every value distinct


def test_flatten_pixels_orders_images_then_rows_then_columns():
    feats = _map()
    rows = flatten_pixels(feats)
    assert rows.shape == (2 * 2 * 4, 3)
    expected = torch.stack([feats[b, :, i, j] for b in range(2) for i in range(2) for j in range(4)])
    assert torch.equal(rows, expected)
    with pytest.raises(ValueError, match=r"\(B, D, h, w\) feature map, got \(3, 4\)"):
        flatten_pixels(torch.zeros(3, 4))


def test_sample_pixels_takes_distinct_pixels_of_each_image():
    feats = _map()
    rows = sample_pixels(feats, 3, torch.Generator().manual_seed(0))
    assert rows.shape == (2 * 3, 3)
    for b in range(2):
        own = flatten_pixels(feats[b : b + 1])
        picked = rows[3 * b : 3 * b + 3]
        hits = (picked[:, None, :] == own[None, :, :]).all(-1)  # (3, 8): which pixel each row is
        assert hits.sum(1).tolist() == [1, 1, 1] and len(set(hits.int().argmax(1).tolist())) == 3
    again = sample_pixels(feats, 3, torch.Generator().manual_seed(0))
    assert torch.equal(rows, again)


@pytest.mark.parametrize("per_image", [None, 8, 100])
def test_sample_pixels_keeps_everything_for_none_or_at_least_h_w(per_image):
    assert torch.equal(sample_pixels(_map(), per_image), flatten_pixels(_map()))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_sample_pixels_refuses_a_bad_count(bad):
    with pytest.raises(ValueError, match="per_image .* must be a positive int or None"):
        sample_pixels(_map(), bad)


def test_assign_pixels_matches_a_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    feats, centroids = torch.randn(2, 4, 3, 5, generator=g), torch.randn(3, 4, generator=g)
    labels = assign_pixels(feats, centroids)
    assert labels.shape == (2, 3, 5) and labels.dtype == torch.long
    for b in range(2):
        for i in range(3):
            for j in range(5):
                dist = ((feats[b, :, i, j][None, :] - centroids) ** 2).sum(1)
                assert labels[b, i, j] == dist.argmin()
    assert torch.equal(assign_pixels(feats.half(), centroids), assign_pixels(feats.half().float(), centroids))
    with pytest.raises(ValueError, match="features have 4 channels but the centroids have 2"):
        assign_pixels(feats, torch.zeros(3, 2))


def test_cluster_shares_by_hand():
    shares = cluster_shares(torch.tensor([[0, 1], [1, 1]]), 3)
    assert torch.equal(shares, torch.tensor([0.25, 0.75, 0.0]))
    assert cluster_shares(torch.tensor([1], dtype=torch.uint8), 2).tolist() == [0.0, 1.0]


def test_cluster_shares_refuses_bad_labels():
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\), got a label 3"):
        cluster_shares(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="got a negative label"):
        cluster_shares(torch.tensor([0, -1]), 3)
    with pytest.raises(ValueError, match="integer tensor"):
        cluster_shares(torch.tensor([0.0]), 3)
    with pytest.raises(ValueError, match="labels is empty"):
        cluster_shares(torch.zeros(0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_clusters must be a positive int"):
        cluster_shares(torch.tensor([0]), 0)


@pytest.mark.gpu
def test_pixel_helpers_stay_on_the_device():
    device = torch.device("cpu" if os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda") == "cpu" else "cuda")
    feats = torch.randn(2, 8, 4, 4, device=device)
    centroids = torch.randn(3, 8, device=device)
    cpu_generator = torch.Generator().manual_seed(0)  # a CPU generator with device features, as the trainer uses
    assert sample_pixels(feats, 5, cpu_generator).device.type == device.type
    labels = assign_pixels(feats, centroids)
    assert labels.device.type == device.type
    assert torch.equal(labels.cpu(), assign_pixels(feats.cpu(), centroids.cpu()))
    assert cluster_shares(labels, 3).device.type == device.type
