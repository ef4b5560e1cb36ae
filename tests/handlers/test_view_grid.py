"""Tests of ViewGridHandler, read back from the TensorBoard event file."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from monai_ssl.handlers import ViewGridHandler


def _run(outputs, handler, epochs=2):
    engine = Engine(lambda engine, item: item)
    handler.attach(engine)
    engine.run(outputs, max_epochs=epochs)
    return engine


def _images(log_dir, tag):
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    acc.Reload()
    return acc.Images(tag)


@pytest.mark.parametrize(
    "shape, max_samples, cols",
    [
        ((5, 1, 8, 6), 3, 3),  # 2-D, fewer samples shown than in the batch
        ((2, 4, 5, 8, 6), 8, 2),  # volume (middle slice), 4 channels -> first channel
        ((3, 3, 8, 6), 8, 3),  # RGB
    ],
)
def test_views_logged_once_per_epoch(tmp_path, shape, max_samples, cols):
    outputs = [{"view1": torch.rand(shape), "view2": torch.rand(shape), "loss": 0.0} for _ in range(2)]
    handler = ViewGridHandler(log_dir=tmp_path, max_samples=max_samples)
    _run(outputs, handler, epochs=2)
    images = _images(tmp_path, "byol/views")
    assert [im.step for im in images] == [1, 2]
    h, w = shape[-2:]
    assert {(im.height, im.width) for im in images} == {(2 * (h + 2) + 2, cols * (w + 2) + 2)}


def test_grid_rows_are_views(tmp_path):
    view1 = torch.zeros(2, 1, 3, 5, 4)
    view1[:, :, 1] = torch.arange(20.0).view(5, 4)  # only the middle slice varies
    view2 = torch.rand(2, 1, 3, 5, 4)
    grid = ViewGridHandler(log_dir=tmp_path).make_grid({"view1": view1, "view2": view2})
    assert tuple(grid.shape) == (3, 2 * 7 + 2, 2 * 6 + 2)
    torch.testing.assert_close(grid[0, 2:7, 2:6], torch.arange(20.0).view(5, 4) / 19)  # row 1: view1, sample 0
    assert grid[0, 9:14, 2:6].min() == 0.0 and grid[0, 9:14, 2:6].max() == 1.0  # row 2: view2 normalised


def test_external_writer_not_closed_and_output_transform(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path))
    outputs = [[{"a": torch.rand(1, 4, 4), "b": torch.rand(1, 4, 4)} for _ in range(3)]] * 2  # decollated list
    handler = ViewGridHandler(summary_writer=writer, view_keys=("a", "b"), tag="v", output_transform=lambda o: o)
    _run(outputs, handler, epochs=1)
    writer.add_scalar("still_open", 1.0, 0)
    writer.close()
    images = _images(tmp_path, "v")
    assert [im.step for im in images] == [1]
    assert (images[0].height, images[0].width) == (2 * 6 + 2, 3 * 6 + 2)


def test_missing_key(tmp_path):
    handler = ViewGridHandler(log_dir=tmp_path)
    with pytest.raises(KeyError, match="view2"):
        _run([{"view1": torch.rand(1, 1, 4, 4)}], handler, epochs=1)
