"""The human-readable record of the pseudo-labeling rounds: ``rounds.csv`` and ``pseudo_labels.csv``.

The tables are derived from the round state (:class:`~monai_ssl.pseudo_label.round_state.RoundProgress`)
and rewritten whole, atomically, after every round of "Integration of Self-Supervised BYOL in
Semi-Supervised Medical Image Recognition" (Feng et al.); they are never read back, the round
checkpoints are the source of truth for a resume.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_ssl.utils import atomic_write_text

__all__ = [
    "ROUNDS_FILE",
    "TABLE_FILE",
    "TABLE_HEADER",
    "csv_text",
    "metric_column",
    "round_scalars",
    "rounds_header",
    "table_rows",
    "true_label",
    "write_tables",
]

ROUNDS_FILE = "rounds.csv"
TABLE_FILE = "pseudo_labels.csv"
TABLE_HEADER = ("id", "image", "label", "confidence", "round", "true_label")


def metric_column(metric_name: str) -> str:
    """The name of the validation metric in ``rounds.csv`` and ``engine.state.metrics``.

    ``val_`` is prefixed once: ``"accuracy"`` gives ``"val_accuracy"``, and so does ``"val_accuracy"``.
    """
    return metric_name if metric_name.startswith("val_") else f"val_{metric_name}"


def rounds_header(metric_name: str) -> list[str]:
    """The columns of ``rounds.csv``, one row per finished round."""
    return [
        "round", "n_labeled", "n_pseudo", "n_new", "n_changed", "n_dropped", "n_pool", metric_column(metric_name),
        "pseudo_label_accuracy", "train_seconds", "score_seconds", "val_seconds", "best_round", "best_metric",
    ]  # fmt: skip


def true_label(item: Mapping) -> int | None:
    """The item's own scalar class label, if it carries one (for analysis only, never for training)."""
    value = item.get("label")
    if value is None:
        return None
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        return None
    return int(array.reshape(()).item())


def csv_text(header: Sequence[str], rows: Sequence[Mapping]) -> str:
    """``rows`` as CSV text with the given column order (missing and None values left empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in header})
    return buffer.getvalue()


def table_rows(entries: Sequence[Mapping], items_by_id: Mapping[str, Mapping]) -> list[dict]:
    """Rows of ``pseudo_labels.csv``: each pseudo-label entry with its image path and true label.

    Args:
        entries: pseudo-label entries (``id``, ``label``, ``confidence``, ``round``).
        items_by_id: the unlabeled items by id; ``image`` is written when it is a path (empty for
            in-memory images) and ``true_label`` when the item carries a scalar ``label``.
    """
    rows = []
    for entry in entries:
        item = items_by_id[entry["id"]]
        image = item["image"]
        path = os.fspath(image) if isinstance(image, (str, os.PathLike)) else ""
        rows.append({**entry, "image": path, "true_label": true_label(item)})
    return rows


def write_tables(
    output_dir: str | os.PathLike,
    records: Sequence[Mapping],
    entries: Sequence[Mapping],
    items_by_id: Mapping[str, Mapping],
    metric_name: str,
) -> None:
    """Write ``rounds.csv`` (the per-round ``records``) and ``pseudo_labels.csv`` atomically."""
    out = Path(output_dir)
    atomic_write_text(csv_text(rounds_header(metric_name), records), out / ROUNDS_FILE)
    atomic_write_text(csv_text(TABLE_HEADER, table_rows(entries, items_by_id)), out / TABLE_FILE)


def round_scalars(output: dict[str, Any]) -> dict[str, float]:
    """The numbers of a round (``engine.state.output``), tagged ``pseudo_label/...`` for TensorBoard.

    Use as ``output_transform`` of :class:`monai.handlers.TensorBoardStatsHandler` with
    ``iteration_log=True``; the global step is the engine iteration, i.e. ``round + 1``.
    """
    return {
        f"pseudo_label/{k}": float(v)
        for k, v in output.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }
