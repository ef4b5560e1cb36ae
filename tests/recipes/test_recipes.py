"""The recipe parts the bundle configs name instead of writing logic: BYOL view placement, cross-teaching batches."""

from __future__ import annotations

from monai.data import list_data_collate
from monai.transforms import PadListDataCollate

from monai_ssl.recipes import (
    labeled_batch_size,
    unlabeled_batch_size,
    view_collate,
    view_transforms,
    working_spatial_size,
)


def test_views_on_the_device_or_in_the_workers():
    assert view_transforms(True, ["params"], ["views"]) == ["params"]
    assert view_transforms(False, ["params"], ["views"]) == ["views"]
    assert isinstance(view_collate(True), PadListDataCollate) and view_collate(False) is list_data_collate
    assert working_spatial_size(224) == [224, 224] and working_spatial_size(None) == [-1, -1]


def test_cross_teaching_batches_follow_the_paper():
    assert (labeled_batch_size(0.1), unlabeled_batch_size(0.1)) == (8, 8)
    assert (labeled_batch_size(1.0), unlabeled_batch_size(1.0)) == (15, 1)
