"""Tests of SegmentationOverlayLogger, read back from the TensorBoard event file."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monai_ssl.handlers import SegmentationOverlayLogger
from monai_ssl.visualize.outlines import PREDICTION_COLOR, TRUTH_COLOR

H, W = 12, 20


def _images(log_dir, tag):
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    acc.Reload()
    return acc.Images(tag)


def _pixels(event):
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def _items(n):
    """Per-image items in MONAI's (C, W, H) order: the true box on rows 2..7, columns 3..10 of the picture."""
    truth = torch.zeros(1, H, W)
    truth[0, 2:8, 3:11] = 1
    pred = torch.zeros(1, H, W)
    pred[0, 4:10, 12:18] = 1
    onehot = torch.cat([1 - pred, pred])
    wh = lambda x: x.transpose(-1, -2)  # noqa: E731
    return [
        {"image": wh(torch.rand(3, H, W)), "label": wh(truth), "pred": wh(onehot), "pred_b": wh(pred)}
        for _ in range(n)
    ]


def test_supervised_evaluator_logs_once_per_evaluation(tmp_path):
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    torch.manual_seed(0)
    data = [{"image": torch.rand(3, W, H), "label": (torch.rand(1, W, H) > 0.5).float()} for _ in range(5)]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Conv2d(3, 2, kernel_size=1),
        postprocessing=Activationsd(keys="pred", softmax=True),  # 2-channel probabilities
    )
    logger = SegmentationOverlayLogger(log_dir=tmp_path, num_images=3)
    logger.attach(evaluator)
    evaluator.run(global_epoch=1)
    evaluator.run(global_epoch=2)
    logger.close()
    images = _images(tmp_path, "validation/overlays")
    assert [im.step for im in images] == [1, 2]
    assert {(im.height, im.width) for im in images} == {(H + 4, 3 * (W + 2) + 2)}  # 3 pictures in a row, (H, W)


def test_one_tag_per_network_and_epoch_source(tmp_path):
    trainer = Engine(lambda engine, batch: None)
    trainer.state.epoch = 7
    engine = Engine(lambda engine, batch: batch)
    logger = SegmentationOverlayLogger(
        log_dir=tmp_path, num_images=4, epoch_source=trainer, pred_keys={"cnn": "pred", "transformer": "pred_b"}
    )
    logger.attach(engine)
    engine.run([_items(1), _items(1)], max_epochs=1)  # fewer images than num_images: written at the epoch's end
    logger.close()
    for tag in ("validation/overlays/cnn", "validation/overlays/transformer"):
        (event,) = _images(tmp_path, tag)
        assert event.step == 7 and (event.height, event.width) == (H + 4, 2 * (W + 2) + 2)
        pixels = _pixels(event)[2:, 2:]  # inside the padding: the first picture
        assert tuple(pixels[4, 3]) == TRUTH_COLOR  # left edge of the true box, oriented like the file
        assert tuple(pixels[6, 17]) == PREDICTION_COLOR  # right edge of the predicted box
        assert tuple(_pixels(event)[0, 0]) == (255, 255, 255)  # white padding


def test_external_writer_kept_open_and_errors(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    engine = Engine(lambda engine, batch: batch)
    SegmentationOverlayLogger(summary_writer=writer, tag="val", num_images=1, spatial_order="HW").attach(engine)
    items = [{"image": torch.rand(1, H, W), "pred": torch.zeros(1, H, W)}]  # no label: prediction only
    engine.run([items, items], max_epochs=2)
    writer.add_scalar("still_open", 1.0, 0)
    writer.close()
    images = _images(tmp_path, "val")
    assert [im.step for im in images] == [1, 2] and (images[0].height, images[0].width) == (H + 4, W + 4)
    with pytest.raises(KeyError, match=r"keys \['pred'\] not in the output item"):
        bad = Engine(lambda engine, batch: batch)
        SegmentationOverlayLogger(summary_writer=SummaryWriter(str(tmp_path / "b"))).attach(bad)
        bad.run([[{"image": torch.rand(1, 4, 4)}]], max_epochs=1)
    with pytest.raises(ValueError, match="pred_keys"):
        SegmentationOverlayLogger(log_dir=tmp_path, pred_keys={})
