"""End-of-epoch report of a classifier: predictions CSV, metrics JSON, confusion-matrix and ROC-curve PNGs.

Binary (one probability per sample) and multi-class (a softmax vector per sample) outputs are supported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import evenly_divisible_all_gather, string_list_all_gather

from monai_ssl.metrics import binary_classification_metrics, multiclass_classification_metrics, multilabel_report, roc_curve
from monai_ssl.metrics.multiclass import ROW_SUM_TOLERANCE
from monai_ssl.metrics.multilabel import _thresholds as multilabel_thresholds
from monai_ssl.utils import atomic_write_text

from .classification_report_inputs import _class_indices, _per_sample, _rows, _to_numpy, default_report_output_transform
from .multilabel_report_files import check_multilabel_batch, write_multilabel_report
from .report_folder import check_report_folder, publish_report

__all__ = ["ClassificationReportWriter"]

logger = logging.getLogger("monai_ssl")


class ClassificationReportWriter:
    """Collect per-sample class probabilities over an epoch and write a classification report.

    Meant for a MONAI ``SupervisedEvaluator`` (or any Ignite ``Engine``) whose outputs were already turned
    into probabilities by postprocessing. The mode follows the shape of the predictions:

    **Binary** (one probability of class 1 per sample: ``(B,)``, ``(B, 1)``; postprocess a single logit
    with ``Activationsd(keys="pred", sigmoid=True)``). Labels are ``0``/``1``. At every ``EPOCH_COMPLETED``
    it (over)writes into ``output_dir``, atomically:

    - ``{prefix}predictions.csv``: columns ``id,probability,prediction[,label]``
      (``prediction = int(probability >= threshold)``);
    - ``{prefix}metrics.json``: :func:`monai_ssl.metrics.binary_classification_metrics` (only with labels);
    - ``{prefix}confusion_matrix.png``: the 2 x 2 matrix at ``threshold`` (only with labels and
      ``plot_confusion_matrix=True``);
    - ``{prefix}roc_curve.png``: only with labels of both classes and ``plot_roc=True``.

    **Multi-class** (a vector of ``K >= 2`` probabilities per sample, ``(B, K)``, each summing to 1;
    postprocess with ``Activationsd(keys="pred", softmax=True)``). Labels are class indices ``(B,)``/``(B, 1)``
    or one-hot ``(B, K)``. ``threshold`` is not used: the prediction is the arg-max class.

    - ``{prefix}predictions.csv``: columns ``id,prediction,confidence,prob_<name>...[,label]``, where
      ``prediction`` and ``label`` are class *names* and ``confidence`` is the largest probability. Names
      are ``class_names`` when given, else the indices ``"0"``, ``"1"``, ... (so the columns then read
      ``prob_0``, ``prob_1``, ... and the predictions and labels are indices);
    - ``{prefix}metrics.json``: :func:`monai_ssl.metrics.multiclass_classification_metrics` (only with labels);
    - ``{prefix}confusion_matrix.png``: counts, rows = true class (only with labels and
      ``plot_confusion_matrix=True``);
    - ``{prefix}roc_curve.png``: one one-vs-rest curve per class (only with labels of at least two classes
      and ``plot_roc=True``).

    **Multi-label** (``multi_label=True``: ``K`` independent sigmoid probabilities per sample, multi-hot
    labels ``(B, K)``): per-label and macro F1, precision, recall and AUC at ``thresholds`` (with their
    ``thresholds_source``), a CSV with ``prob_<label>`` and 0/1 ``pred_<label>`` columns per label, a ROC
    PNG with one curve per label and no confusion matrix (see :mod:`.multilabel_report_files`).
    Single-label binary reports also give ``macro_recall`` (balanced accuracy, S4MI's ISIC 2017 measure).

    The metrics dict is also stored as ``engine.state.metrics_report`` (``None`` without labels) and
    summarised on the ``"monai_ssl"`` logger. In distributed runs, results are gathered from all
    ranks and files are written by rank 0 only.

    **An earlier report in** ``output_dir``. With ``overwrite=None`` (the default) the files are
    (over)written in place, each atomically. With ``overwrite=False`` or ``True`` the report is
    published whole (:func:`~monai_ssl.handlers.report_folder.publish_report`: written into a hidden
    sibling folder, then swapped in; other entries of ``output_dir`` are kept), and a report that
    ``output_dir`` held before this run is either refused, with a ``FileExistsError`` raised already at
    ``attach`` that names the folder and says to pass ``--output_dir <new folder>`` or ``--overwrite True``
    (``False``), or replaced (``True``). The later epochs of the same run replace its own report.

    Example::

        evaluator = SupervisedEvaluator(..., postprocessing=Activationsd(keys="pred", sigmoid=True))
        ClassificationReportWriter(output_dir="./eval", id_key="id").attach(evaluator)

        # multi-class
        evaluator = SupervisedEvaluator(..., postprocessing=Activationsd(keys="pred", softmax=True))
        names = ["CNV", "DME", "DRUSEN", "NORMAL"]
        ClassificationReportWriter(output_dir="./eval", class_names=names).attach(evaluator)
    """

    def __init__(
        self,
        output_dir: str | os.PathLike = "./",
        id_key: str = "id",
        output_transform: Callable[[Any], Any] = default_report_output_transform,
        batch_transform: Callable[[Any], Sequence[Any] | None] | None = None,
        threshold: float = 0.5,
        prefix: str = "",
        plot_roc: bool = True,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        plot_confusion_matrix: bool = True,
        overwrite: bool | None = None,
        summary_extra: Mapping[str, Any] | None = None,
        multi_label: bool = False,
        thresholds: float | Sequence[float] | None = None,
        thresholds_source: str | None = None,
    ) -> None:
        """
        Args:
            output_dir: folder of the report files (created when needed).
            id_key: key of the sample identifiers in ``engine.state.batch``.
            output_transform: maps ``engine.state.output`` to ``(probs, labels)``, a tuple where
                ``labels`` may be ``None`` (inference), or to ``probs`` alone (anything but a tuple).
                Each is a batched tensor/array (predictions ``(B,)``/``(B, 1)`` or ``(B, K)``; labels
                ``(B,)``/``(B, 1)`` or one-hot ``(B, K)``) or a list of per-sample values. The default reads
                keys ``"pred"`` and ``"label"`` from a dict or a decollated list of dicts.
            batch_transform: maps ``engine.state.batch`` to the list of sample ids of the iteration.
                ``None`` looks up ``batch[id_key]``, then the image meta ``filename_or_obj``, and finally
                uses the running index of the sample within the epoch.
            threshold: decision threshold on the probability (binary mode only).
            prefix: prepended to the file names, e.g. ``"val_"``.
            plot_roc: whether to draw the ROC curve PNG.
            class_names: names of the ``K`` classes (multi-class: CSV columns, metric keys, plot labels;
                binary: two names, used for the confusion-matrix axes only). Also fixes ``K``: predictions of
                another width raise an error.
            num_classes: ``K`` without names (names default to ``"0"``, ``"1"``, ...); must agree with
                ``class_names`` when both are given. ``None`` with no ``class_names`` takes ``K`` from the data.
            plot_confusion_matrix: whether to draw the confusion-matrix PNG.
            overwrite: ``None`` writes the files into ``output_dir`` in place; ``False`` refuses an
                ``output_dir`` that already holds a report (the bundles' ``evaluate.json``), ``True``
                replaces that report; both publish the report folder whole (see above).
            summary_extra: JSON-serialisable entries added to ``metrics.json`` (e.g. the split and its
                ``split_note``, "selection split: optimistic" when evaluated on the split the model was chosen on).
            multi_label: ``(B, K)`` sigmoid probabilities and multi-hot labels, one decision per label:
                the report is :func:`monai_ssl.metrics.multilabel_report` (per-label and macro F1, precision,
                recall, AUC) and the CSV has ``prob_<label>`` and ``pred_<label>`` (0/1) columns per label
                (see :mod:`monai_ssl.handlers.multilabel_report_files`); no confusion matrix.
            thresholds: multi-label only: one threshold for every label or one per label (e.g. from
                :func:`monai_ssl.recipes.validation_thresholds`); ``None`` is 0.5.
            thresholds_source: multi-label only: where the thresholds come from (e.g. "chosen on the val
                split"), written to ``metrics.json`` as ``thresholds_source``.

        Raises:
            ValueError: on inconsistent ``class_names``/``num_classes``, or an ``overwrite`` that is not a bool.
        """
        if isinstance(class_names, str):
            raise ValueError(f"`class_names` must be a sequence of strings, got the string {class_names!r}.")
        names = None if class_names is None else [str(c) for c in class_names]
        least = 1 if multi_label else 2
        if names is not None and (len(names) < least or len(set(names)) != len(names)):
            raise ValueError(f"`class_names` must hold at least {least} distinct names, got {names}.")
        if thresholds is not None and not multi_label:
            raise ValueError(
                "`thresholds` are for multi-label reports (multi_label=True); a single-label report takes the "
                "arg-max class (binary: `threshold`)."
            )
        if num_classes is not None:
            if int(num_classes) < least:
                raise ValueError(f"`num_classes` must be >= 2, got {num_classes}.")
            if names is not None and len(names) != int(num_classes):
                raise ValueError(f"`class_names` has {len(names)} names but `num_classes` is {num_classes}.")
        if overwrite is not None and not isinstance(overwrite, bool):
            raise ValueError(f"`overwrite` must be True or False (--overwrite True), got {overwrite!r}.")
        self.class_names = names
        self.num_classes = len(names) if names is not None else None if num_classes is None else int(num_classes)
        self.plot_confusion_matrix = plot_confusion_matrix
        self.output_dir = Path(output_dir)
        self.id_key = id_key
        self.output_transform = output_transform
        self.batch_transform = batch_transform
        self.threshold = float(threshold)
        self.prefix = prefix
        self.plot_roc = plot_roc
        self.overwrite = overwrite
        self.summary_extra = dict(summary_extra or {})
        self.multi_label = bool(multi_label)
        self.thresholds = thresholds
        self.thresholds_source = thresholds_source
        if multi_label and self.num_classes is not None:
            multilabel_thresholds(thresholds, self.num_classes)  # a wrong count fails here, not after the evaluation
        json.dumps(self.summary_extra, allow_nan=False)  # fails here, not after the evaluation
        self._published = False  # whether this run has published its report (later epochs replace it)
        self._reset()

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine``.

        Args:
            engine: Ignite Engine, typically an evaluator.

        Raises:
            FileExistsError: ``overwrite=False`` and ``output_dir`` already holds a report.
        """
        if self.overwrite is not None:  # fail before the evaluation runs, not after
            check_report_folder(self.output_dir, self.prefix, self.overwrite)
        if not engine.has_event_handler(self.epoch_started, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        if not engine.has_event_handler(self, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if not engine.has_event_handler(self.epoch_completed, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def _reset(self) -> None:
        self._ids: list[str] = []
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray | None] = []
        self._width: int | None = None  # probabilities per sample: 1 (binary) or K (multi-class)

    def _names(self, k: int) -> list[str]:
        """Class names of a ``k``-class report (``k = 2`` for binary)."""
        return self.class_names if self.class_names is not None else [str(i) for i in range(k)]

    def epoch_started(self, engine: Engine) -> None:
        """Clear the buffers.

        Args:
            engine: Ignite Engine (unused).
        """
        self._reset()

    def __call__(self, engine: Engine) -> None:
        """Collect probabilities, labels and ids of the current iteration.

        Args:
            engine: Ignite Engine.
        """
        out = self.output_transform(engine.state.output)
        probs_raw, labels_raw = (out if len(out) == 2 else (out[0], None)) if isinstance(out, tuple) else (out, None)
        if self.multi_label:
            probs_ml, labels_ml = check_multilabel_batch(probs_raw, labels_raw, self.num_classes, _to_numpy)
            self._ids.extend(self._batch_ids(engine.state.batch, probs_ml.shape[0]))
            self._probs.append(probs_ml)
            self._labels.append(labels_ml)
            return
        rows = _rows(probs_raw)
        width = rows.shape[1]
        if self._width is not None and width != self._width:
            raise ValueError(
                f"ClassificationReportWriter: {width} probabilities per sample, "
                f"but {self._width} in earlier iterations of the epoch."
            )
        expected = self.num_classes
        if (width == 1 and expected not in (None, 2)) or (width > 1 and expected is not None and width != expected):
            raise ValueError(
                f"ClassificationReportWriter: expected {expected} class probabilities per sample "
                f"(from `class_names`/`num_classes`), got {width}."
            )
        self._width = width
        if width > 1:
            self._collect_multiclass(engine, rows, labels_raw)
            return
        probs = _per_sample(probs_raw, "probability")
        if not np.issubdtype(probs.dtype, np.floating):
            probs = probs.astype(np.float64)
        bad = probs[~((probs >= 0.0) & (probs <= 1.0))]
        if bad.size:
            raise ValueError(
                f"ClassificationReportWriter: probability outside [0, 1] (e.g. {float(bad[0])}); apply a sigmoid in "
                "postprocessing, e.g. `Activationsd(keys='pred', sigmoid=True)`."
            )
        labels = None
        if labels_raw is not None:
            labels = _per_sample(labels_raw, "label").astype(np.float64)
            if labels.shape != probs.shape:
                raise ValueError(
                    f"ClassificationReportWriter: {labels.shape[0]} labels for {probs.shape[0]} predictions."
                )
            if not np.all((labels == 0.0) | (labels == 1.0)):
                found = np.unique(labels)[:5].tolist()
                raise ValueError(f"ClassificationReportWriter: labels must be 0 or 1, got {found}.")
        self._ids.extend(self._batch_ids(engine.state.batch, probs.shape[0]))
        self._probs.append(probs)
        self._labels.append(labels)

    def _collect_multiclass(self, engine: Engine, probs: np.ndarray, labels_raw: Any) -> None:
        """Validate and store one iteration of ``(B, K)`` probabilities and their labels."""
        probs = probs.astype(np.float64) if not np.issubdtype(probs.dtype, np.floating) else probs
        hint = "apply a softmax in postprocessing, e.g. `Activationsd(keys='pred', softmax=True)`."
        bad = probs[~((probs >= 0.0) & (probs <= 1.0))]
        if bad.size:
            raise ValueError(f"ClassificationReportWriter: probability outside [0, 1] (e.g. {float(bad[0])}); {hint}")
        sums = probs.astype(np.float64).sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
        if off.size:
            raise ValueError(
                "ClassificationReportWriter: the class probabilities of a sample must sum to 1, "
                f"got {float(sums[off[0]]):.4f}; {hint}"
            )
        labels = None if labels_raw is None else _class_indices(labels_raw, probs.shape[0], probs.shape[1])
        self._ids.extend(self._batch_ids(engine.state.batch, probs.shape[0]))
        self._probs.append(probs)
        self._labels.append(labels)

    def _batch_ids(self, batch: Any, count: int) -> list[str]:
        """Sample ids of the current iteration as strings."""
        ids = self.batch_transform(batch) if self.batch_transform is not None else self._default_ids(batch)
        if ids is None:
            start = len(self._ids)
            return [str(start + i) for i in range(count)]
        if isinstance(ids, (torch.Tensor, np.ndarray)):
            ids = _to_numpy(ids).reshape(-1).tolist()
        elif isinstance(ids, (str, bytes)):
            ids = [ids]
        ids = [str(i) for i in ids]
        if len(ids) != count:
            raise ValueError(f"ClassificationReportWriter: {len(ids)} ids for {count} predictions in this iteration.")
        return ids

    def _default_ids(self, batch: Any) -> Sequence[Any] | None:
        """``batch[id_key]``, else the image meta ``filename_or_obj``, else ``None``; per sample if decollated."""
        if isinstance(batch, list) and batch and all(isinstance(b, dict) for b in batch):
            ids = [self._default_ids(b) for b in batch]
            return None if any(i is None for i in ids) else [i[0] if isinstance(i, list) else i for i in ids]
        if not isinstance(batch, dict):
            return None
        if batch.get(self.id_key) is not None:
            return batch[self.id_key]
        image = batch.get("image")
        meta = getattr(image, "meta", None) or batch.get("image_meta_dict") or {}
        return meta.get("filename_or_obj") if isinstance(meta, dict) else None

    def epoch_completed(self, engine: Engine) -> None:
        """Gather results, compute metrics and write the report files.

        Args:
            engine: Ignite Engine.
        """
        if not self._probs:
            logger.warning("ClassificationReportWriter: no predictions collected this epoch; nothing written.")
            engine.state.metrics_report = None
            return
        has_labels = [lab is not None for lab in self._labels]
        if any(has_labels) and not all(has_labels):
            raise ValueError("ClassificationReportWriter: labels were present in only some iterations of the epoch.")
        probs = np.concatenate(self._probs)
        labels = np.concatenate(self._labels).astype(np.int64) if all(has_labels) else None
        ids = list(self._ids)
        if idist.get_world_size() > 1:
            dtype = probs.dtype
            probs = evenly_divisible_all_gather(torch.as_tensor(probs), concat=True).numpy().astype(dtype)
            if labels is not None:
                labels = evenly_divisible_all_gather(torch.as_tensor(labels), concat=True).numpy()
            ids = string_list_all_gather(ids)

        if self.multi_label:
            self._multilabel_epoch(engine, probs, labels, ids)
            return
        multiclass = probs.ndim == 2
        if labels is None:
            report = None
        elif multiclass:
            report = multiclass_classification_metrics(probs, labels, self._names(probs.shape[1]))
        else:
            report = binary_classification_metrics(probs, labels, self.threshold)
            if "macro_recall" not in report and None not in (report.get("sensitivity"), report.get("specificity")):
                # balanced accuracy, the mean recall of both classes (S4MI reports ISIC 2017 as recall)
                report["macro_recall"] = (report["sensitivity"] + report["specificity"]) / 2
        engine.state.metrics_report = report
        if idist.get_rank() == 0:
            self._publish(self._write_multiclass if multiclass else self._write, probs, labels, ids, report)

    def _multilabel_epoch(self, engine: Engine, probs: np.ndarray, labels: np.ndarray | None, ids: list[str]) -> None:
        """Multi-label report of the epoch: :func:`multilabel_report` at the given thresholds, then the files."""
        names = self._names(probs.shape[1])
        thresholds = [float(t) for t in multilabel_thresholds(self.thresholds, probs.shape[1])]
        report = None
        if labels is not None:
            report = multilabel_report(probs, labels, thresholds, names)
            report["thresholds_source"] = self.thresholds_source or (
                "default 0.5" if self.thresholds is None else "given to the report"
            )
        engine.state.metrics_report = report
        if idist.get_rank() == 0:
            self._publish(self._write_multilabel, probs, labels, ids, report, names, thresholds)

    def _write_multilabel(
        self, folder: Path, probs: np.ndarray, labels: np.ndarray | None, ids: list[str], report: dict | None,
        names: list[str], thresholds: list[float],
    ) -> None:
        write_multilabel_report(
            folder, self.prefix, probs, labels, ids, names, thresholds, report, plot_roc=self.plot_roc,
            summary_extra=self.summary_extra, shown_dir=self.output_dir,
        )

    def _publish(self, write: Callable[..., None], *args: Any) -> None:
        """Run ``write(folder, *args)`` into ``output_dir`` itself, or into a staging folder swapped in whole."""
        if self.overwrite is None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write(self.output_dir, *args)
            return
        check_report_folder(self.output_dir, self.prefix, self.overwrite or self._published)
        publish_report(self.output_dir, lambda folder: write(folder, *args), self.prefix)
        self._published = True

    def _save_confusion_matrix(self, folder: Path, matrix: list[list[int]], names: list[str], title: str) -> None:
        """Draw ``matrix`` into ``folder/{prefix}confusion_matrix.png`` when enabled."""
        if not self.plot_confusion_matrix:
            return
        from monai_ssl.visualize import confusion_matrix_figure, save_figure

        fig = confusion_matrix_figure(matrix, names, title=title)
        save_figure(fig, folder / f"{self.prefix}confusion_matrix.png")

    def _write_multiclass(
        self, folder: Path, probs: np.ndarray, labels: np.ndarray | None, ids: list[str], report: dict | None
    ) -> None:
        """Write the multi-class CSV, JSON and PNGs into ``folder`` and log a summary."""
        names = self._names(probs.shape[1])
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["id", "prediction", "confidence"] + [f"prob_{name}" for name in names]
        writer.writerow(header + (["label"] if labels is not None else []))
        preds = np.argmax(probs, axis=1)
        for i, row in enumerate(probs):
            line = [ids[i], names[preds[i]], str(row[preds[i]])] + [str(p) for p in row]
            writer.writerow(line + ([names[labels[i]]] if labels is not None else []))
        atomic_write_text(buf.getvalue(), folder / f"{self.prefix}predictions.csv")
        csv_path = self.output_dir / f"{self.prefix}predictions.csv"
        if report is None:
            logger.info("Classification report: %d predictions (no labels) -> %s", len(probs), csv_path)
            return
        atomic_write_text(json.dumps({**report, **self.summary_extra}, indent=2) + "\n", folder / f"{self.prefix}metrics.json")
        self._save_confusion_matrix(
            folder, report["confusion_matrix"], names, f"{self.prefix}Confusion matrix (n={report['n']})"
        )
        if self.plot_roc and report["macro_auc"] is not None:
            from monai_ssl.visualize import multiclass_roc_figure, save_figure

            fig = multiclass_roc_figure(
                probs, labels, names, title=f"{self.prefix}ROC curves, one-vs-rest (n={report['n']})"
            )
            save_figure(fig, folder / f"{self.prefix}roc_curve.png")

        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        logger.info(
            "Classification report (n=%d, classes=%d): accuracy=%s macro_precision=%s macro_recall=%s macro_f1=%s "
            "macro_auc=%s -> %s",
            report["n"], len(names), fmt(report["accuracy"]), fmt(report["macro_precision"]),
            fmt(report["macro_recall"]), fmt(report["macro_f1"]), fmt(report["macro_auc"]), self.output_dir,
        )

    def _write(
        self, folder: Path, probs: np.ndarray, labels: np.ndarray | None, ids: list[str], report: dict | None
    ) -> None:
        """Write the binary CSV, JSON and PNGs into ``folder`` and log a summary."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "probability", "prediction"] + (["label"] if labels is not None else []))
        for i, p in enumerate(probs):
            row = [ids[i], str(p), int(p >= self.threshold)]
            writer.writerow(row + ([int(labels[i])] if labels is not None else []))
        atomic_write_text(buf.getvalue(), folder / f"{self.prefix}predictions.csv")
        csv_path = self.output_dir / f"{self.prefix}predictions.csv"
        if report is None:
            logger.info("Classification report: %d predictions (no labels) -> %s", len(probs), csv_path)
            return
        atomic_write_text(json.dumps({**report, **self.summary_extra}, indent=2) + "\n", folder / f"{self.prefix}metrics.json")
        self._save_confusion_matrix(
            folder,
            report["confusion_matrix"],
            self._names(2),
            f"{self.prefix}Confusion matrix (threshold={report['threshold']:g}, n={report['n']})",
        )
        if self.plot_roc and report["auc"] is not None:
            from monai_ssl.visualize import roc_figure, save_figure

            fpr, tpr, _ = roc_curve(probs, labels)
            fig = roc_figure(fpr, tpr, report["auc"], title=f"{self.prefix}ROC curve (n={report['n']})")
            save_figure(fig, folder / f"{self.prefix}roc_curve.png")

        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        logger.info(
            "Classification report (n=%d, positives=%d, threshold=%g): auc=%s accuracy=%s sensitivity=%s "
            "specificity=%s precision=%s f1=%s -> %s",
            report["n"], report["n_positive"], report["threshold"], fmt(report["auc"]), fmt(report["accuracy"]),
            fmt(report["sensitivity"]), fmt(report["specificity"]), fmt(report["precision"]), fmt(report["f1"]),
            self.output_dir,
        )
