"""End-of-evaluation report of a binary segmentation: per-image IoU/Dice CSV, summary JSON, best/worst case pictures."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
from ignite.engine import Engine, Events

from monai_ssl.metrics.segmentation import EMPTY_MASKS_NOTE, binary_iou_dice, foreground_mask
from monai_ssl.metrics.confidence_interval import mean_ci95
from monai_ssl.utils import atomic_path, atomic_write_text
from monai_ssl.visualize.outlines import OUTLINE_LEGEND, outline_overlay

from .report_folder import publish_report
from .segmentation_items import file_stem, item_image_file, per_image_items, running_id

__all__ = ["SEGMENTATION_REPORT_ENTRIES", "SegmentationReportWriter"]

logger = logging.getLogger("monai_ssl")

SEGMENTATION_REPORT_ENTRIES = ("per_image.csv", "metrics.json", "cases")
"""The entries of ``output_dir`` that make a segmentation report (``cases`` is a folder of PNGs)."""
CSV_COLUMNS = ("id", "image_file", "iou", "dice", "truth_fraction", "pred_fraction")
_SUMMARY_KEYS = (
    "n_images", "mean_iou", "iou_ci95", "median_iou", "mean_dice", "dice_ci95", "median_dice", "n_empty_truth",
    "empty_masks", "cases",
)
_CASE_FILE = re.compile(r"^(worst|best)_\d+_.*\.png$")


@dataclass
class _Case:
    """One image's scores; ``picture`` is kept only for the current best and worst cases."""

    id: str
    image_file: str
    iou: float
    dice: float
    truth_fraction: float
    pred_fraction: float
    picture: np.ndarray | None = field(default=None, repr=False)


def _worst_first(case: _Case) -> tuple:
    return case.iou, case.dice, case.id


def _best_first(case: _Case) -> tuple:
    return -case.iou, -case.dice, case.id


def _keep(kept: list[_Case], case: _Case, rank: Callable[[_Case], tuple], size: int, draw: Callable[[], Any]) -> None:
    """Insert ``case`` into ``kept`` (the ``size`` first by ``rank``, sorted) when it belongs there."""
    if size == 0 or (len(kept) >= size and rank(case) >= rank(kept[-1])):
        return
    kept.append(replace(case, picture=draw()))
    kept.sort(key=rank)
    del kept[size:]


def _ci(values: list[float]) -> tuple[float, list[float] | None]:
    mean, half, _ = mean_ci95(values)
    return mean, None if half is None else [mean - half, mean + half]


def _gather(
    cases: list[_Case], worst: list[_Case], best: list[_Case], size: int
) -> tuple[list[_Case], list[_Case], list[_Case]]:
    """The scores and kept cases of all ranks; an image seen twice (sampler padding) counts once."""
    parts = idist.all_gather((cases, worst, best))  # one (cases, worst, best) per rank
    unique: dict[tuple[str, str], _Case] = {}
    for part in parts:
        for case in part[0]:
            unique.setdefault((case.id, case.image_file), case)
    kept = []
    for index, rank in ((1, _worst_first), (2, _best_first)):
        candidates = {(c.id, c.image_file): c for part in parts for c in part[index]}
        kept.append(sorted(candidates.values(), key=rank)[:size])
    return list(unique.values()), kept[0], kept[1]


class SegmentationReportWriter:
    """Score every image of an evaluation (IoU and Dice of the foreground, e.g. the lesion) and write a report.

    Meant for a MONAI ``SupervisedEvaluator`` whose postprocessing gives, per image, the predicted mask
    ``pred_key`` and the true mask ``label_key`` at the same (original) size, each a label map
    ``(1, H, W)`` of 0/1 or two channels ``(2, H, W)`` (see :func:`monai_ssl.metrics.segmentation.foreground_mask`).
    At ``Events.COMPLETED`` it writes into ``output_dir``, each file atomically:

    - ``per_image.csv``: columns ``id,image_file,iou,dice,truth_fraction,pred_fraction`` (the fractions are
      the share of the image's pixels in each mask), one row per image in evaluation order;
    - ``metrics.json``: ``n_images``, ``mean_iou``, ``iou_ci95`` (``[lo, hi]``, Student t, ``null`` for one
      image), ``median_iou``, the same for Dice, ``n_empty_truth``, the empty-mask convention, the case ids
      and the picture legend, then ``summary_extra``;
    - ``cases/worst_01_<id>.png``, ... and ``cases/best_01_<id>.png``, ...: the ``num_cases`` images of lowest
      and highest IoU (ties: Dice, then id), truth outlined in green, prediction in red, both in yellow.
      With fewer than ``2 * num_cases`` images some appear in both lists.

    The image of a picture is ``picture_key`` when the item has it (the original image), else ``image_key``
    (the network input; the masks are then resized to it). Only the pictures of the current best and worst
    cases are kept, downscaled to ``max_side``, so memory does not grow with the evaluation. The id of an
    image is ``item[id_key]``, else the stem of its ``filename_or_obj``, else its running index.

    The summary is also stored as ``engine.state.metrics_report``. In distributed runs the scores and cases
    of all ranks are gathered (a sample repeated by the sampler's padding is counted once) and rank 0 writes.

    ``overwrite`` works as in :class:`~monai_ssl.handlers.ClassificationReportWriter`: ``None`` writes in
    place (and removes case pictures of an earlier run); ``False`` refuses, already at ``attach``, an
    ``output_dir`` holding a report (``per_image.csv``, ``metrics.json`` or ``cases``); ``True`` replaces it.
    Both publish the report whole (:func:`~monai_ssl.handlers.report_folder.publish_report`).

    Example::

        SegmentationReportWriter("./eval", summary_extra={"split": "test"}).attach(evaluator)
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        overwrite: bool | None = None,
        num_cases: int = 4,
        pred_key: str = "pred",
        label_key: str = "label",
        image_key: str = "image",
        picture_key: str = "image_original",
        id_key: str = "id",
        spatial_order: str = "WH",
        max_side: int | None = 1024,
        summary_extra: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Args:
            output_dir: folder of the report (created when needed).
            overwrite: ``None``, ``False`` or ``True``, see above.
            num_cases: how many worst and how many best images to draw (0: none).
            pred_key: item key of the predicted mask.
            label_key: item key of the true mask.
            image_key: item key of the network input image (pictures, and ``filename_or_obj`` for the id).
            picture_key: item key of the original image, preferred for pictures when present.
            id_key: item key of an explicit image id.
            spatial_order: ``"WH"`` when arrays are (width, height) as MONAI's ``PILReader`` gives them
                (pictures are transposed back to look like the file), ``"HW"`` otherwise.
            max_side: longest side of a case picture; ``None`` keeps the image size.
            summary_extra: JSON-serialisable entries added to ``metrics.json`` (e.g. the split, the model file).

        Raises:
            ValueError: on a bad ``overwrite``, ``num_cases`` or ``spatial_order``, or a ``summary_extra`` that
                is not JSON-serialisable or has a key that the report itself writes.
        """
        if overwrite is not None and not isinstance(overwrite, bool):
            raise ValueError(f"`overwrite` must be None, True or False (--overwrite True), got {overwrite!r}.")
        if int(num_cases) < 0:
            raise ValueError(f"`num_cases` must be >= 0, got {num_cases}.")
        if spatial_order not in ("HW", "WH"):
            raise ValueError(f"`spatial_order` must be 'WH' (MONAI's PILReader) or 'HW', got {spatial_order!r}.")
        extra = dict(summary_extra or {})
        clash = sorted(set(extra) & set(_SUMMARY_KEYS))
        if clash:
            raise ValueError(f"`summary_extra` keys {clash} are written by the report itself; rename them.")
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"`summary_extra` must be JSON-serialisable (it goes into metrics.json): {err}") from None
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self.num_cases = int(num_cases)
        self.pred_key, self.label_key, self.image_key = pred_key, label_key, image_key
        self.picture_key, self.id_key = picture_key, id_key
        self.spatial_order = spatial_order
        self.max_side = max_side
        self.summary_extra = extra
        self._published = False
        self.reset()

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine`` (an evaluator).

        Raises:
            FileExistsError: ``overwrite=False`` and ``output_dir`` already holds a report.
        """
        if self.overwrite is not None:
            self._check_output_dir(self.overwrite)
        for event, handler in (
            (Events.STARTED, self.reset),
            (Events.ITERATION_COMPLETED, self),
            (Events.COMPLETED, self.completed),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)

    def reset(self, engine: Engine | None = None) -> None:
        """Forget the scores and cases collected so far (at the start of every evaluation)."""
        self._cases: list[_Case] = []
        self._worst: list[_Case] = []
        self._best: list[_Case] = []

    def __call__(self, engine: Engine) -> None:
        """Score the images of the current iteration."""
        for item in per_image_items(engine.state.output, engine.state.batch):
            self._add(item)

    def _add(self, item: Mapping) -> None:
        for key in (self.pred_key, self.label_key):
            if item.get(key) is None:
                raise KeyError(
                    f"SegmentationReportWriter: key '{key}' not in the output item (keys {sorted(item)})."
                )
        pred = foreground_mask(item[self.pred_key], self.pred_key)
        truth = foreground_mask(item[self.label_key], self.label_key)
        if pred.shape != truth.shape:
            raise ValueError(
                f"SegmentationReportWriter: '{self.pred_key}' {pred.shape} and '{self.label_key}' {truth.shape} "
                "differ in size; bring the prediction back to the label's size in postprocessing (e.g. Invertd)."
            )
        iou, dice = binary_iou_dice(pred, truth)
        image_file = item_image_file(item, self.image_key) or ""
        explicit = item.get(self.id_key)
        if explicit is not None:
            case_id = str(explicit)
        else:
            case_id = file_stem(image_file) if image_file else running_id(len(self._cases))
        case = _Case(case_id, image_file, iou, dice, float(truth.mean()), float(pred.mean()))
        self._cases.append(case)
        drawn: list[np.ndarray] = []

        def draw() -> np.ndarray:
            if not drawn:
                drawn.append(self._picture(item, truth, pred))
            return drawn[0]

        _keep(self._worst, case, _worst_first, self.num_cases, draw)
        _keep(self._best, case, _best_first, self.num_cases, draw)

    def _picture(self, item: Mapping, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
        image = item.get(self.picture_key)
        image = item.get(self.image_key) if image is None else image
        if image is None:
            raise KeyError(
                f"SegmentationReportWriter: neither '{self.picture_key}' nor '{self.image_key}' in the output item "
                f"(keys {sorted(item)}); the case pictures need an image."
            )
        return outline_overlay(image, truth, pred, spatial_order=self.spatial_order, max_side=self.max_side)

    def completed(self, engine: Engine) -> None:
        """Gather the scores (all ranks), summarise them and write the report (rank 0)."""
        cases, worst, best = self._cases, self._worst, self._best
        if idist.get_world_size() > 1:
            cases, worst, best = _gather(cases, worst, best, self.num_cases)
        if not cases:
            logger.warning("SegmentationReportWriter: no images scored in this evaluation; nothing written.")
            engine.state.metrics_report = None
            return
        summary = self.summarise(cases, worst, best)
        engine.state.metrics_report = summary
        if idist.get_rank() == 0:
            self._publish(cases, worst, best, summary)
            logger.info(
                "Segmentation report (n=%d): mean_iou=%.4f mean_dice=%.4f median_iou=%.4f -> %s",
                summary["n_images"], summary["mean_iou"], summary["mean_dice"], summary["median_iou"], self.output_dir,
            )

    def summarise(self, cases: list[_Case], worst: list[_Case], best: list[_Case]) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        ious, dices = [c.iou for c in cases], [c.dice for c in cases]
        mean_iou, iou_ci = _ci(ious)
        mean_dice, dice_ci = _ci(dices)
        return {
            "n_images": len(cases),
            "mean_iou": mean_iou,
            "iou_ci95": iou_ci,
            "median_iou": statistics.median(ious),
            "mean_dice": mean_dice,
            "dice_ci95": dice_ci,
            "median_dice": statistics.median(dices),
            "n_empty_truth": sum(c.truth_fraction == 0.0 for c in cases),
            "empty_masks": EMPTY_MASKS_NOTE,
            "cases": {"worst": [c.id for c in worst], "best": [c.id for c in best], "legend": OUTLINE_LEGEND},
            **self.summary_extra,
        }

    def _check_output_dir(self, overwrite: bool) -> None:
        path = self.output_dir.resolve()
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(
                f"SegmentationReportWriter: output_dir {self.output_dir} is a file, not a folder."
            )
        cwd = Path.cwd().resolve()
        if path == cwd or path in cwd.parents:
            raise ValueError(
                f"SegmentationReportWriter: output_dir {self.output_dir} is the current folder or holds it; a report "
                "folder is replaced whole, so give the report a folder of its own, e.g. --output_dir ./eval."
            )
        found = [name for name in SEGMENTATION_REPORT_ENTRIES if (path / name).exists()]
        if found and not overwrite:
            raise FileExistsError(
                f"SegmentationReportWriter: {self.output_dir} already holds an evaluation ({', '.join(found)}); it is "
                "left as it is. To keep it, write this evaluation into a new folder with --output_dir <new folder>; "
                "to replace it, add --overwrite True."
            )

    def _publish(self, cases: list[_Case], worst: list[_Case], best: list[_Case], summary: dict) -> None:
        if self.overwrite is None:
            written = self._write(self.output_dir, cases, worst, best, summary)
            for stale in sorted((self.output_dir / "cases").iterdir()):
                if _CASE_FILE.match(stale.name) and stale.name not in written:
                    stale.unlink()
            return
        self._check_output_dir(self.overwrite or self._published)
        publish_report(self.output_dir, lambda folder: self._write(folder, cases, worst, best, summary))
        self._published = True

    def _write(
        self, folder: Path, cases: list[_Case], worst: list[_Case], best: list[_Case], summary: dict
    ) -> set[str]:
        """Write the CSV, JSON and case PNGs into ``folder``; return the names of the PNGs."""
        from PIL import Image

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for c in cases:
            writer.writerow([c.id, c.image_file, c.iou, c.dice, c.truth_fraction, c.pred_fraction])
        atomic_write_text(buf.getvalue(), folder / "per_image.csv")
        atomic_write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", folder / "metrics.json")
        (folder / "cases").mkdir(parents=True, exist_ok=True)
        written = set()
        for kind, kept in (("worst", worst), ("best", best)):
            for rank, case in enumerate(kept, start=1):
                name = f"{kind}_{rank:02d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', case.id)}.png"
                with atomic_path(folder / "cases" / name) as tmp:
                    Image.fromarray(case.picture).save(tmp, format="PNG")
                written.add(name)
        return written
