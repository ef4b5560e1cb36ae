"""The cluster/class confusion and the Hungarian naming of clusters (PiCIE's evaluation)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from monai_ssl.metrics import ClusterConfusion, cluster_confusion, match_clusters, matched_pixel_accuracy


def test_confusion_counts_cluster_class_pairs_and_ignores_labels_out_of_range():
    clusters = torch.tensor([[0, 0, 1], [1, 1, 0]])
    labels = torch.tensor([[0, 1, 1], [1, 255, -1]])  # 255 and -1 are ignored
    table = cluster_confusion(clusters, labels, num_clusters=2, num_classes=2)
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, [[1, 1], [0, 2]])


def test_confusion_takes_arrays_and_whole_floats_of_any_equal_shape():
    clusters = np.array([[[2.0, 1.0], [0.0, 2.0]]])  # (1, 2, 2) as an arg-max map is
    labels = np.array([[[1, 1], [0, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(cluster_confusion(clusters, labels, 3, 2), [[1, 0], [0, 1], [1, 1]])


@pytest.mark.parametrize("value", [2, -1])
def test_a_cluster_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        cluster_confusion(torch.tensor([0, value]), torch.tensor([0, 1]), 2, 2)


def test_fractional_clusters_and_shape_mismatch_are_refused():
    with pytest.raises(ValueError, match="arg-max"):
        cluster_confusion(torch.tensor([0.5, 1.0]), torch.tensor([0, 1]), 2, 2)
    with pytest.raises(ValueError, match="same shape"):
        cluster_confusion(torch.zeros(1, 4), torch.zeros(4), 2, 2)
    with pytest.raises(TypeError, match="tensor or a numpy array"):
        cluster_confusion([0, 1], [0, 1], 2, 2)


def test_the_accumulator_sums_updates_and_resets():
    acc = ClusterConfusion(num_clusters=2, num_classes=2)
    np.testing.assert_array_equal(acc.confusion, np.zeros((2, 2)))
    assert acc.device is None
    acc.update(torch.tensor([0, 1]), torch.tensor([1, 1]))
    acc.update(np.array([1, 1, 0]), np.array([0, 1, 1]))
    np.testing.assert_array_equal(acc.confusion, [[0, 2], [1, 2]])
    assert acc.device == torch.device("cpu")
    acc.reset()
    assert acc.confusion.sum() == 0


@pytest.mark.gpu
def test_the_accumulator_counts_on_the_device():
    device = "cpu" if os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda") == "cpu" else "cuda"
    acc = ClusterConfusion(2, 2)
    acc.update(torch.tensor([0, 1, 1], device=device), torch.tensor([1, 0, 0], device=device))
    assert acc.device.type == device  # counted where the pixels are
    np.testing.assert_array_equal(acc.confusion, [[0, 1], [2, 0]])


def test_hungarian_beats_a_greedy_match():
    # greedy takes the largest cell (cluster 0 -> class 0, 5 pixels) and ends with 5 + 0 + 1 = 6 pixels;
    # the assignment gives 0 -> 1, 1 -> 0, 2 -> 2: 4 + 4 + 1 = 9 pixels
    confusion = np.array([[5, 4, 0], [4, 0, 0], [0, 0, 1]])
    mapping = match_clusters(confusion)
    assert mapping == [1, 0, 2]
    assert matched_pixel_accuracy(confusion, mapping) == pytest.approx(9 / 14)
    assert matched_pixel_accuracy(confusion, [0, 1, 2]) == pytest.approx(6 / 14)


def test_a_permuted_two_by_two():
    assert match_clusters([[1, 9], [8, 2]]) == [1, 0]
    assert match_clusters([[9, 1], [2, 8]]) == [0, 1]
    assert matched_pixel_accuracy([[1, 9], [8, 2]], [1, 0]) == pytest.approx(17 / 20)


def test_over_clustering_matches_one_to_one_then_by_majority():
    # a one-to-one part 0 -> 1, 1 -> 0 (8 pixels, more than 0 -> 0 with 2 -> 1: 6), then cluster 2 -> class 1
    # (its majority); a majority vote alone would give [0, 0, 1]
    assert match_clusters(np.array([[5, 4], [4, 0], [0, 1]])) == [1, 0, 1]
    assert match_clusters(np.array([[10, 0], [0, 7], [6, 1], [0, 0]])) == [0, 1, 0, 0]  # an empty cluster: class 0


def test_matching_errors():
    with pytest.raises(ValueError, match="every class needs a cluster"):
        match_clusters(np.ones((2, 3)))
    with pytest.raises(ValueError, match="no pixel"):
        match_clusters(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(num_clusters, num_classes\)"):
        match_clusters(np.ones(4))
    with pytest.raises(ValueError, match=">= 0"):
        match_clusters([[1, -1], [0, 2]])
    with pytest.raises(ValueError, match="each of 2 clusters"):
        matched_pixel_accuracy([[1, 0], [0, 1]], [0, 2])
