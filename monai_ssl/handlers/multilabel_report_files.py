"""The multi-label part of :class:`~monai_ssl.handlers.ClassificationReportWriter`: batch checks and report files.

A multi-label classifier has one sigmoid per label (the multi-label immunofluorescence set of S4MI,
Singh et al., reported as F1); its report is :func:`monai_ssl.metrics.multilabel_report` (per-label
and macro F1, precision, recall, AUC) at per-label thresholds, usually chosen on the validation
split (:func:`monai_ssl.recipes.validation_thresholds`). There is no confusion matrix (labels are
not exclusive); the ROC figure has one curve per label.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_ssl.metrics import roc_curve
from monai_ssl.utils import atomic_write_text

__all__ = ["check_multilabel_batch", "write_multilabel_report"]

logger = logging.getLogger("monai_ssl")


def _as_rows(values: Any, to_numpy: Any) -> np.ndarray:
    """A batch (tensor ``(B, K)`` or list of ``K``-vectors) as a float64 array ``(B, K)``."""
    if isinstance(values, (list, tuple)):
        items = [to_numpy(v).reshape(-1) for v in values]
        if len({i.size for i in items}) > 1:
            raise ValueError("ClassificationReportWriter (multi-label): per-sample vectors differ in size.")
        arr = np.stack(items) if items else np.zeros((0, 0))
    else:
        arr = to_numpy(values)
        arr = arr.reshape(1, -1) if arr.ndim <= 1 else arr
    return np.asarray(arr, dtype=np.float64)


def check_multilabel_batch(
    probs_raw: Any, labels_raw: Any, num_labels: int | None, to_numpy: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate one iteration of multi-label output: ``(probabilities (B, K), labels (B, K) or None)``.

    Args:
        probs_raw: sigmoid probabilities, batched ``(B, K)`` or a list of ``K``-vectors.
        labels_raw: multi-hot labels of the same shape, or ``None`` (inference).
        num_labels: the expected ``K`` (from ``class_names``/``num_classes``), or ``None``.
        to_numpy: converts a tensor/array/number to numpy.

    Raises:
        ValueError: probabilities outside ``[0, 1]``, a width other than ``num_labels``, labels of another
            shape or not 0/1.
    """
    probs = _as_rows(probs_raw, to_numpy)
    if probs.ndim != 2 or (num_labels is not None and probs.shape[1] != num_labels):
        raise ValueError(
            f"ClassificationReportWriter (multi-label): expected {num_labels or 'K'} probabilities per sample "
            f"(one per label), got shape {probs.shape}."
        )
    bad = probs[~((probs >= 0.0) & (probs <= 1.0))]
    if bad.size:
        raise ValueError(
            f"ClassificationReportWriter (multi-label): probability outside [0, 1] (e.g. {float(bad[0])}); apply a "
            "sigmoid in postprocessing, e.g. `Activationsd(keys='pred', sigmoid=True)`."
        )
    if labels_raw is None:
        return probs, None
    labels = _as_rows(labels_raw, to_numpy)
    if labels.shape != probs.shape:
        raise ValueError(
            f"ClassificationReportWriter (multi-label): labels must be multi-hot of the predictions' shape {probs.shape}, "
            f"got {labels.shape}; is the task single-label (multi_label false)?"
        )
    if not np.all((labels == 0.0) | (labels == 1.0)):
        raise ValueError("ClassificationReportWriter (multi-label): labels must be 0 or 1 (one column per label).")
    return probs, labels


def _roc_figure(probs: np.ndarray, labels: np.ndarray, names: Sequence[str], report: Mapping[str, Any], title: str) -> Any:
    """One ROC curve per label with a defined AUC, the chance diagonal, AUCs in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for j, name in enumerate(names):
        auc = report["per_label"][name]["auc"]
        if auc is None:
            ax.plot([], [], label=f"{name} (AUC n/a)")
            continue
        fpr, tpr, _ = roc_curve(probs[:, j], labels[:, j])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1.02))
    macro = report.get("macro_auc")
    ax.legend(loc="lower right", fontsize="small", title=None if macro is None else f"macro AUC {macro:.3f}")
    return fig


def write_multilabel_report(
    folder: Path,
    prefix: str,
    probs: np.ndarray,
    labels: np.ndarray | None,
    ids: Sequence[str],
    names: Sequence[str],
    thresholds: Sequence[float],
    report: Mapping[str, Any] | None,
    plot_roc: bool = True,
    summary_extra: Mapping[str, Any] | None = None,
    shown_dir: Path | None = None,
) -> None:
    """Write ``{prefix}predictions.csv``, ``{prefix}metrics.json`` and ``{prefix}roc_curve.png`` into ``folder``.

    The CSV has columns ``id, prob_<label>..., pred_<label>...[, label_<label>...]``: one probability
    and one 0/1 decision (``probability >= threshold`` of the label) per label, and the 0/1 targets
    when known. The JSON is ``report`` (with its ``thresholds`` and the caller's
    ``thresholds_source``) plus ``summary_extra``; it and the ROC figure are written only with labels.

    Args:
        folder: where to write (the report folder or its staging copy).
        prefix: prepended to the file names.
        probs: ``(N, K)`` probabilities; labels: ``(N, K)`` 0/1 or ``None``; ids: ``N`` sample ids.
        names: the ``K`` label names; thresholds: the ``K`` thresholds.
        report: :func:`monai_ssl.metrics.multilabel_report` output (``None`` without labels).
        plot_roc: draw the ROC figure (labels with a defined AUC only).
        summary_extra: entries added to the JSON.
        shown_dir: the folder named in the log line (default ``folder``).
    """
    thr = np.asarray(thresholds, dtype=np.float64)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["id"] + [f"prob_{n}" for n in names] + [f"pred_{n}" for n in names]
    writer.writerow(header + ([f"label_{n}" for n in names] if labels is not None else []))
    decisions = (probs >= thr[None, :]).astype(np.int64)
    for i, row in enumerate(probs):
        line = [ids[i]] + [str(p) for p in row] + [int(d) for d in decisions[i]]
        writer.writerow(line + ([int(v) for v in labels[i]] if labels is not None else []))
    atomic_write_text(buf.getvalue(), folder / f"{prefix}predictions.csv")
    shown = shown_dir if shown_dir is not None else folder
    if report is None or labels is None:
        logger.info("Multi-label report: %d predictions (no labels) -> %s", len(probs), shown / f"{prefix}predictions.csv")
        return
    atomic_write_text(
        json.dumps({**report, **dict(summary_extra or {})}, indent=2) + "\n", folder / f"{prefix}metrics.json"
    )
    if plot_roc and report.get("macro_auc") is not None:
        from monai_ssl.visualize import save_figure

        fig = _roc_figure(probs, labels, names, report, f"{prefix}ROC curves, one per label (n={report['n']})")
        save_figure(fig, folder / f"{prefix}roc_curve.png")

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    logger.info(
        "Multi-label report (n=%d, labels=%d, thresholds %s): macro_f1=%s macro_precision=%s macro_recall=%s "
        "macro_auc=%s -> %s",
        report["n"], len(names), report.get("thresholds_source") or "given", fmt(report["macro_f1"]),
        fmt(report["macro_precision"]), fmt(report["macro_recall"]), fmt(report["macro_auc"]), shown,
    )
