"""ClusterMonitor: cluster shares to TensorBoard, overlays, and the collapse warning after `patience` epochs."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from monai_ssl.engines import PiCIEEvents
from monai_ssl.handlers import ClusterMonitor, cluster_overlay


class _Writer:
    def __init__(self):
        self.scalars, self.images = {}, {}

    def add_scalar(self, tag, value, step):
        self.scalars[(tag, step)] = value

    def add_image(self, tag, image, global_step, dataformats):
        self.images[(tag, global_step)] = (image, dataformats)

    def flush(self):
        pass


def _engine(shares_by_epoch):
    engine = Engine(lambda e, b: None)
    engine.register_events(*PiCIEEvents)
    previews = (torch.rand(2, 3, 16, 16), torch.randint(0, 2, (2, 4, 4)))

    @engine.on(PiCIEEvents.CLUSTERING_COMPLETED)
    def _noop(_):
        pass

    def fire(epoch):
        shares = [torch.tensor(s) for s in shares_by_epoch[epoch - 1]]
        engine.state.epoch = epoch
        engine.state.clustering = SimpleNamespace(shares=shares, inertia=[0.1, 0.2], reseeded=epoch - 1, seconds=1.5,
                                                  preview=previews)
        engine.fire_event(PiCIEEvents.CLUSTERING_COMPLETED)

    return engine, fire


def test_shares_and_overlays_are_written_per_epoch():
    writer = _Writer()
    engine, fire = _engine([[[0.7, 0.3], [0.6, 0.4]]])
    ClusterMonitor(writer, max_share=0.95, patience=2).attach(engine)
    fire(1)
    assert writer.scalars[("clusters/share/view1/cluster0", 1)] == pytest.approx(0.7)
    assert writer.scalars[("clusters/share/view2/cluster1", 1)] == pytest.approx(0.4)
    assert writer.scalars[("clusters/largest_share", 1)] == pytest.approx(0.7)
    assert writer.scalars[("clusters/reseeded", 1)] == 0
    image, layout = writer.images[("clusters/overlay", 1)]
    assert layout == "HWC" and image.dtype == np.uint8 and image.shape[2] == 3


def test_collapse_warns_after_patience_epochs_in_a_row(caplog):
    collapsed, fine = [[0.99, 0.01], [0.5, 0.5]], [[0.6, 0.4], [0.55, 0.45]]
    engine, fire = _engine([collapsed, collapsed, fine, collapsed, collapsed, collapsed])
    monitor = ClusterMonitor(None, max_share=0.95, patience=2)
    monitor.attach(engine)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        for epoch in range(1, 7):
            fire(epoch)
    assert monitor.collapsed_epochs == [1, 2, 4, 5, 6]
    assert monitor.warnings == [2, 5, 6]
    assert "collapsed" in caplog.text and "SGD" in caplog.text


def test_no_warning_below_the_share():
    engine, fire = _engine([[[0.9, 0.1], [0.9, 0.1]]] * 4)
    monitor = ClusterMonitor(None, max_share=0.95, patience=1)
    monitor.attach(engine)
    for epoch in range(1, 5):
        fire(epoch)
    assert monitor.warnings == []


def test_overlay_tints_each_cluster():
    image = torch.zeros(1, 8, 8)
    clusters = torch.zeros(2, 2, dtype=torch.long)
    clusters[0, 0] = 1
    picture = cluster_overlay(image, clusters)
    assert picture.shape == (8, 8, 3)
    assert not np.array_equal(picture[0, 0], picture[7, 7])  # cluster 1 top-left, cluster 0 elsewhere
    assert np.array_equal(picture[0, 0], picture[3, 3])  # a quarter-resolution pixel covers 4x4 image pixels


@pytest.mark.parametrize(("kwargs", "message"), [({"max_share": 0}, "max_share"), ({"patience": 0}, "patience")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClusterMonitor(None, **kwargs)
