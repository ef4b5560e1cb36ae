"""TensorBoard pictures of a few validation images with the outlines of their true and predicted masks."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ignite.engine import Engine, Events
from torch.utils.tensorboard import SummaryWriter

from monai_ssl.metrics.segmentation import foreground_mask
from monai_ssl.visualize.outlines import outline_overlay

from .segmentation_items import per_image_items

__all__ = ["SegmentationOverlayLogger", "tile_pictures"]


def tile_pictures(pictures: Sequence[np.ndarray], per_row: int = 4, padding: int = 2) -> np.ndarray:
    """Tile ``(h, w, 3)`` uint8 pictures of any sizes row by row on a white ``(H, W, 3)`` uint8 canvas.

    Every cell is as large as the largest picture; a smaller picture sits in its cell's top-left corner.

    Args:
        pictures: at least one ``(h, w, 3)`` uint8 array.
        per_row: pictures per row.
        padding: white pixels around and between the cells.
    """
    if not pictures:
        raise ValueError("tile_pictures: no pictures to tile.")
    cell_h = max(p.shape[0] for p in pictures)
    cell_w = max(p.shape[1] for p in pictures)
    cols = min(per_row, len(pictures))
    rows = math.ceil(len(pictures) / cols)
    canvas = np.full((rows * (cell_h + padding) + padding, cols * (cell_w + padding) + padding, 3), 255, np.uint8)
    for i, picture in enumerate(pictures):
        top = padding + (i // cols) * (cell_h + padding)
        left = padding + (i % cols) * (cell_w + padding)
        canvas[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return canvas


class SegmentationOverlayLogger:
    """Log the first ``num_images`` images of every evaluation to TensorBoard, with mask outlines.

    Attached to an evaluator, it takes the first ``num_images`` per-image outputs of each evaluation
    (spread over as many iterations as needed), draws every image ``image_key`` with the outline of
    its true mask ``label_key`` in green (when the output has one) and of its predicted mask in red
    (yellow where they meet), and writes them as one grid picture per network with
    ``SummaryWriter.add_image``: tag ``tag`` for a single ``pred_key``, ``f"{tag}/{name}"`` for every
    ``name`` of ``pred_keys``. Masks may be label maps ``(1, H, W)`` or two channels ``(2, H, W)``
    (one-hot, probabilities or logits) at any size: they are resized to the image shown. The global
    step is the epoch of ``epoch_source`` (e.g. the trainer) when given, else the evaluator's own
    epoch (which MONAI's ``ValidationHandler`` sets to the trainer's epoch).

    Like MONAI's ``TensorBoardImageHandler``, it draws from ``engine.state.output``, with an epoch-level
    step; unlike it, it overlays outlines and gathers several images into one picture.

    Example::

        SegmentationOverlayLogger(log_dir="./runs", epoch_source=trainer).attach(evaluator)
        # two networks evaluated together:
        SegmentationOverlayLogger(pred_keys={"cnn": "pred_cnn", "transformer": "pred_transformer"}).attach(evaluator)
    """

    def __init__(
        self,
        summary_writer: SummaryWriter | None = None,
        log_dir: str | os.PathLike = "./runs",
        tag: str = "validation/overlays",
        num_images: int = 4,
        pred_key: str = "pred",
        label_key: str = "label",
        image_key: str = "image",
        spatial_order: str = "WH",
        epoch_source: Engine | None = None,
        pred_keys: Mapping[str, str] | None = None,
        max_side: int = 256,
        per_row: int = 4,
    ) -> None:
        """
        Args:
            summary_writer: TensorBoard writer; ``None`` creates one on ``log_dir``, flushed after every
                picture and closed when ``epoch_source`` completes (a writer passed in is never closed here).
            log_dir: folder of the writer created when ``summary_writer`` is ``None``.
            tag: TensorBoard image tag (the prefix of the tags with ``pred_keys``).
            num_images: images per evaluation.
            pred_key: item key of the prediction, when ``pred_keys`` is ``None``.
            label_key: item key of the true mask (optional in the output).
            image_key: item key of the image drawn.
            spatial_order: ``"WH"`` when arrays are (width, height), as MONAI's ``PILReader`` gives them, so
                that the pictures look like the files; ``"HW"`` otherwise.
            epoch_source: engine whose ``state.epoch`` is the global step, e.g. the trainer.
            pred_keys: network name -> item key of its prediction; one tag per network.
            max_side: longest side of each picture in the grid.
            per_row: pictures per grid row.

        Raises:
            ValueError: on ``num_images``, ``max_side`` or ``per_row`` below 1, empty ``pred_keys`` or a bad
                ``spatial_order``.
        """
        if min(int(num_images), int(max_side), int(per_row)) < 1:
            raise ValueError(
                f"`num_images`, `max_side` and `per_row` must be >= 1, got {num_images}, {max_side}, {per_row}."
            )
        if spatial_order not in ("HW", "WH"):
            raise ValueError(f"`spatial_order` must be 'WH' (MONAI's PILReader) or 'HW', got {spatial_order!r}.")
        if pred_keys is not None and not pred_keys:
            raise ValueError("`pred_keys` must map at least one network name to an output key.")
        self._internal_writer = summary_writer is None
        self._writer = SummaryWriter(log_dir=str(log_dir)) if summary_writer is None else summary_writer
        self.tags = (
            {f"{tag}/{name}": key for name, key in pred_keys.items()} if pred_keys is not None else {tag: pred_key}
        )
        self.num_images = int(num_images)
        self.label_key, self.image_key = label_key, image_key
        self.spatial_order = spatial_order
        self.epoch_source = epoch_source
        self.max_side = int(max_side)
        self.per_row = int(per_row)
        self._pictures: dict[str, list[np.ndarray]] = {}
        self._collecting = False

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine`` (an evaluator)."""
        for event, handler in (
            (Events.EPOCH_STARTED, self.epoch_started),
            (Events.ITERATION_COMPLETED, self),
            (Events.EPOCH_COMPLETED, self.epoch_completed),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)
        source = self.epoch_source
        if self._internal_writer and source is not None and not source.has_event_handler(self.close, Events.COMPLETED):
            source.add_event_handler(Events.COMPLETED, self.close)

    def epoch_started(self, engine: Engine) -> None:
        """Start collecting the pictures of this evaluation."""
        self._pictures = {tag: [] for tag in self.tags}
        self._collecting = True

    def __call__(self, engine: Engine) -> None:
        """Draw the images of this iteration until ``num_images`` are drawn, then write the grids."""
        if not self._collecting:
            return
        for item in per_image_items(engine.state.output, engine.state.batch):
            if self._count() >= self.num_images:
                break
            self._draw(item)
        if self._count() >= self.num_images:
            self._write(engine)

    def epoch_completed(self, engine: Engine) -> None:
        """Write the grids of an evaluation that had fewer than ``num_images`` images."""
        if self._collecting and self._count() > 0:
            self._write(engine)
        self._collecting = False

    def _count(self) -> int:
        return min(len(p) for p in self._pictures.values()) if self._pictures else 0

    def _draw(self, item: Mapping[str, Any]) -> None:
        missing = [k for k in (self.image_key, *self.tags.values()) if item.get(k) is None]
        if missing:
            raise KeyError(f"SegmentationOverlayLogger: keys {missing} not in the output item (keys {sorted(item)}).")
        label = item.get(self.label_key)
        truth = None if label is None else foreground_mask(label, self.label_key)
        for tag, key in self.tags.items():
            pred = foreground_mask(item[key], key)
            self._pictures[tag].append(
                outline_overlay(item[self.image_key], truth, pred, self.spatial_order, max_side=self.max_side)
            )

    def _write(self, engine: Engine) -> None:
        step = (self.epoch_source or engine).state.epoch
        for tag, pictures in self._pictures.items():
            self._writer.add_image(tag, tile_pictures(pictures, self.per_row), global_step=step, dataformats="HWC")
        self._writer.flush()
        self._pictures = {}
        self._collecting = False

    def close(self, engine: Engine | None = None) -> None:
        """Close the writer created by this handler."""
        if self._internal_writer:
            self._writer.close()
