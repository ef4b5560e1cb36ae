"""MiniBatchKMeans: recovery of separable blobs, the reference's update rule, re-seeding, bounds, errors, state."""

from __future__ import annotations

import os

import pytest
import torch

from monai_ssl.clustering import MiniBatchKMeans


def _blobs(dim: int, per_blob: int = 300, spread: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian blobs far apart (shuffled rows, their blob index)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.zeros(3, dim)
    centers[1, 0] = 10.0
    centers[2, 1] = 10.0
    rows = torch.cat([centers[i] + spread * torch.randn(per_blob, dim, generator=g) for i in range(3)])
    truth = torch.arange(3).repeat_interleave(per_blob)
    order = torch.randperm(rows.shape[0], generator=g)
    return rows[order], truth[order]


def _assert_same_partition(labels: torch.Tensor, truth: torch.Tensor) -> None:
    """Every blob gets one cluster and the blobs different ones (equal up to a permutation)."""
    mapped = [labels[truth == b].unique() for b in range(3)]
    assert all(m.numel() == 1 for m in mapped), mapped
    assert len({int(m) for m in mapped}) == 3


def _initialised(centroids: list[list[float]], counts: list[int]) -> MiniBatchKMeans:
    """A k-means whose initialisation is done, with hand-made centroids and counts ``N_k``."""
    km = MiniBatchKMeans(len(centroids), init_points=10)
    km.centroids, km.counts, km.initialised = torch.tensor(centroids), torch.tensor(counts), True
    km.rows_seen = sum(counts)
    return km


@pytest.mark.parametrize("dim", [2, 128])
def test_separable_blobs_are_recovered_by_several_partial_fits(dim):
    rows, truth = _blobs(dim)
    km = MiniBatchKMeans(3, init_points=400, init_iterations=10, seed=1)
    centroids = km.fit(rows.split(150))  # 6 calls: collection, initialisation mid-call, then updates
    assert centroids.shape == (3, dim) and centroids.dtype == torch.float32
    labels = km.assign(rows)
    assert labels.shape == (900,) and labels.dtype == torch.long
    _assert_same_partition(labels, truth)
    assert int(km.counts.sum()) == 900 == km.rows_seen
    assert km.reseeded == 0
    # each centroid sits on its blob's mean (the blobs' spread is 0.1 per coordinate)
    for b in range(3):
        mean = rows[truth == b].mean(0)
        assert torch.allclose(centroids[int(labels[truth == b][0])], mean, atol=0.05)
    assert km.inertia == pytest.approx(0.01 * dim, rel=0.25)


def test_the_mini_batch_update_follows_the_reference_rule():
    km = _initialised([[0.0, 0.0], [10.0, 0.0]], [2, 4])
    km.partial_fit(torch.tensor([[1.0, 0.0], [3.0, 0.0], [10.0, 2.0]]))
    # cluster 0: n=2, mean (2,0), N=2+2=4, lr=1/2 -> (1,0); cluster 1: n=1, mean (10,2), N=5, lr=1/5 -> (10,0.4)
    assert torch.allclose(km.centroids, torch.tensor([[1.0, 0.0], [10.0, 0.4]]))
    assert km.counts.tolist() == [4, 5]
    assert km.inertia == pytest.approx((1 + 9 + 4) / 3)
    assert km.rows_seen == 3 + 6


def test_a_cluster_without_rows_in_a_batch_keeps_its_centroid():
    km = _initialised([[0.0, 0.0], [10.0, 0.0]], [1, 3])
    km.partial_fit(torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(km.centroids, torch.tensor([[1.0, 0.0], [10.0, 0.0]]))  # lr 1/2 for cluster 0
    assert km.counts.tolist() == [2, 3]


def test_the_same_seed_gives_the_same_centroids_and_another_seed_other_seeds():
    rows = torch.randn(600, 8, generator=torch.Generator().manual_seed(3))
    runs = [MiniBatchKMeans(4, init_points=300, init_iterations=3, seed=s).fit(rows.split(100)) for s in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_reseed_empty_moves_each_empty_cluster_to_a_different_farthest_row():
    km = _initialised([[0.0, 0.0], [100.0, 100.0], [-100.0, -100.0]], [4, 0, 0])
    rows = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 3.0]])  # distances to (0,0): 0, 1, 25, 9
    assert km.reseed_empty(rows, torch.tensor([False, True, True])) == 2
    assert torch.equal(km.centroids, torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 3.0]]))
    assert km.reseeded == 2
    assert km.reseed_empty(rows, torch.tensor([False, False, False])) == 0
    assert km.reseeded == 2


def test_finalize_reseeds_a_cluster_that_never_got_a_row_and_counts_it():
    km = _initialised([[0.0, 0.0], [100.0, 100.0]], [1, 0])
    km.partial_fit(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 4.0]]))
    # cluster 0: n=3, mean (1, 4/3), N=4, lr=3/4 -> (0.75, 1.0); cluster 1 stays empty
    assert torch.allclose(km.centroids[0], torch.tensor([0.75, 1.0]))
    centroids = km.finalize()
    # distances to (0.75, 1): 1.0625, 2.5625, 9.5625 -> the empty cluster takes (0, 4)
    assert torch.equal(centroids[1], torch.tensor([0.0, 4.0]))
    assert km.reseeded == 1 and km.counts.tolist() == [4, 1]


def test_too_many_empty_clusters_for_the_rows_raise():
    km = _initialised([[0.0], [5.0], [9.0]], [1, 0, 0])
    with pytest.raises(ValueError, match="cannot re-seed 2 empty clusters from only 1 feature rows"):
        km.reseed_empty(torch.tensor([[1.0]]), torch.tensor([False, True, True]))


def test_init_points_bounds_the_stored_rows():
    km = MiniBatchKMeans(3, init_points=1500, init_iterations=2)
    g = torch.Generator().manual_seed(0)
    for call in range(10):
        km.partial_fit(torch.randn(1000, 4, generator=g))
        assert km.stored_rows <= 1500
        assert km.initialised == (call >= 1)  # full after the second call
    assert km.stored_rows == 0  # the collection is dropped once the clusters are initialised
    assert km.rows_seen == 10_000 and int(km.counts.sum()) == 10_000  # 1500 initial + 500 + 8 x 1000 updates


def test_a_dataset_smaller_than_init_points_is_clustered_at_finalize():
    rows, truth = _blobs(2, per_blob=20)
    km = MiniBatchKMeans(3, init_points=10_000, init_iterations=5)
    km.partial_fit(rows[:30]).partial_fit(rows[30:])
    assert not km.initialised and km.stored_rows == 60
    km.finalize()
    assert km.initialised and int(km.counts.sum()) == 60
    _assert_same_partition(km.assign(rows), truth)


def test_fp16_features_work_and_give_float32_centroids():
    rows, truth = _blobs(16)
    km = MiniBatchKMeans(3, init_points=300, init_iterations=5)
    centroids = km.fit(rows.half().split(300))
    assert centroids.dtype == torch.float32
    _assert_same_partition(km.assign(rows.half()), truth)


@pytest.mark.parametrize("bad", [1, 0, 2.0, True, "2"])
def test_num_clusters_below_two_or_not_an_int_is_refused(bad):
    with pytest.raises(ValueError, match=r"num_clusters must be an int of at least 2 \(background and lesion\)"):
        MiniBatchKMeans(bad)


def test_other_bad_settings_are_refused():
    with pytest.raises(ValueError, match="init_points must be an int of at least num_clusters=4"):
        MiniBatchKMeans(4, init_points=3)
    with pytest.raises(ValueError, match="init_iterations must be a non-negative int"):
        MiniBatchKMeans(2, init_iterations=-1)


def test_too_few_distinct_rows_raise_with_the_number_of_rows():
    km = MiniBatchKMeans(3, init_points=100)
    km.partial_fit(torch.ones(50, 4))  # a constant image
    with pytest.raises(ValueError, match="the 50 rows given have only 1 distinct values"):
        km.finalize()
    km = MiniBatchKMeans(3, init_points=100)
    km.partial_fit(torch.randn(2, 4))
    with pytest.raises(ValueError, match="num_clusters=3 needs at least 3 feature rows, got 2"):
        km.finalize()
    with pytest.raises(ValueError, match="partial_fit was given no feature rows"):
        MiniBatchKMeans(2).finalize()


def test_bad_features_and_early_assign_raise():
    km = MiniBatchKMeans(2, init_points=4)
    with pytest.raises(RuntimeError, match="call partial_fit and finalize first"):
        km.assign(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"features must be an \(N, D\) tensor of feature rows, got \(2, 3, 4\)"):
        km.partial_fit(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="floating-point"):
        km.partial_fit(torch.zeros(3, 2, dtype=torch.long))
    km.fit([torch.randn(8, 2, generator=torch.Generator().manual_seed(0))])
    with pytest.raises(ValueError, match="features have 3 channels but the k-means centroids have 2"):
        km.partial_fit(torch.zeros(4, 3))


@pytest.mark.gpu
def test_partial_fit_and_assign_stay_on_the_device():
    device = torch.device("cpu" if os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda") == "cpu" else "cuda")
    rows, truth = _blobs(128)
    rows = rows.to(device)
    km = MiniBatchKMeans(3, init_points=400, init_iterations=5)
    with torch.autocast(device.type, enabled=device.type == "cuda"):
        centroids = km.fit(rows.half().split(150) if device.type == "cuda" else rows.split(150))
        labels = km.assign(rows)
    assert centroids.device.type == device.type and km.counts.device.type == device.type
    assert labels.device.type == device.type
    _assert_same_partition(labels.cpu(), truth)
