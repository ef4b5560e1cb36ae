"""A round's training items as data: ``datalist.json`` of ids and labels, and the part that reads it in the run.

The retraining step of "Integration of Self-Supervised BYOL in Semi-Supervised Medical Image
Recognition" (Feng et al.): round ``r`` trains on the labeled images plus the pseudo-labeled ones,
each with its *predicted* class as label. The rounds write that choice as ids and labels
(:func:`write_round_datalist`); the round's fine-tuning run turns it back into items of its own
labeled and unlabeled lists (:func:`round_training_items`), so in-memory images (MedMNIST) and
file paths alike travel as what they are, never as config text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_ssl.utils import atomic_write_text

__all__ = [
    "read_round_datalist",
    "read_selection",
    "round_datalist",
    "round_training_items",
    "training_items",
    "write_round_datalist",
    "write_selection",
]


def training_items(
    labeled: Sequence[Mapping], entries: Sequence[Mapping], items_by_id: Mapping[str, Mapping]
) -> list[dict]:
    """Labeled items with ``"pseudo": False``, then copies of the pseudo-labeled pool items.

    A pseudo-labeled copy has ``"label"`` set to the entry's predicted class (a 0-d ``np.int64``)
    and ``"pseudo": True``; a label the unlabeled item carries is never used for training.
    """
    items = [{**x, "pseudo": False} for x in labeled]
    for entry in entries:
        item = items_by_id[str(entry["id"])]
        items.append({**item, "label": np.asarray(entry["label"], dtype=np.int64), "pseudo": True})
    return items


def round_datalist(labeled_ids: Sequence[str], entries: Sequence[Mapping]) -> dict[str, Any]:
    """The content of ``datalist.json``: the labeled ids and the pseudo-labels ``{"id", "label"}`` in order."""
    return {
        "labeled": [str(i) for i in labeled_ids],
        "pseudo_labels": [{"id": str(e["id"]), "label": int(e["label"])} for e in entries],
    }


def write_round_datalist(path: str | os.PathLike, labeled_ids: Sequence[str], entries: Sequence[Mapping]) -> dict:
    """Write :func:`round_datalist` to ``path`` atomically; return what was written."""
    content = round_datalist(labeled_ids, entries)
    atomic_write_text(json.dumps(content, indent=1) + "\n", path)
    return content


def read_round_datalist(path: str | os.PathLike) -> dict[str, Any]:
    """Read a round's ``datalist.json``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a round datalist (the message names the file).
    """
    with open(path, encoding="utf-8") as f:
        try:
            content = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not a round datalist (invalid JSON: {err}).") from err
    if not isinstance(content, dict) or not {"labeled", "pseudo_labels"} <= set(content):
        raise ValueError(f"{path} is not a round datalist (a JSON object with 'labeled' and 'pseudo_labels').")
    return content


def round_training_items(
    datalist_file: str | os.PathLike, labeled: Sequence[Mapping], unlabeled: Sequence[Mapping]
) -> list[dict]:
    """The training items of a round's run: its ``datalist.json`` resolved against the run's own item lists.

    Named by the round's ``train#datalist`` (see :func:`~monai_ssl.pseudo_label.round_folder.round_overrides`).
    The run makes ``labeled`` and ``unlabeled`` from the same settings as the rounds; a labeled set
    other than the file's, or a pseudo-label id that is not an unlabeled item, means they differ.

    Args:
        datalist_file: the round's ``datalist.json``.
        labeled: the run's labeled items (``"id"``, ``"image"``, ``"label"``).
        unlabeled: the run's unlabeled pool.

    Returns:
        :func:`training_items`: the labeled items, then the pseudo-labeled ones with their predicted class.

    Raises:
        ValueError: the file does not fit the run's data (the message names the file and an id).
    """
    content = read_round_datalist(datalist_file)
    by_id = {str(x["id"]): x for x in labeled}
    wanted = [str(i) for i in content["labeled"]]
    if sorted(wanted) != sorted(by_id):
        extra = sorted(set(wanted) ^ set(by_id))
        raise ValueError(
            f"{datalist_file} lists another labeled set than this run has (e.g. {extra[:3]}): the run's data or "
            "label budget differs from the pseudo-labeling run's."
        )
    pool = {str(x["id"]): x for x in unlabeled}
    unknown = [e["id"] for e in content["pseudo_labels"] if str(e["id"]) not in pool]
    if unknown:
        raise ValueError(f"{datalist_file} pseudo-labels ids that are not unlabeled items of this run: {unknown[:3]}.")
    return training_items([by_id[i] for i in wanted], content["pseudo_labels"], pool)


def write_selection(path: str | os.PathLike, chosen: Sequence[tuple[str, int, float]], score_seconds: float) -> None:
    """Write a round's choice ``(id, label, confidence)`` and its scoring time to ``path`` atomically.

    A resumed round trains on this choice again rather than scoring the pool anew, so that its run
    continues on the data its checkpoints were made with.
    """
    content = {
        "selected": [{"id": str(i), "label": int(label), "confidence": float(c)} for i, label, c in chosen],
        "score_seconds": float(score_seconds),
    }
    atomic_write_text(json.dumps(content, indent=1) + "\n", path)


def read_selection(path: str | os.PathLike) -> tuple[list[tuple[str, int, float]], float]:
    """The ``(choice, score_seconds)`` written by :func:`write_selection`.

    Raises:
        ValueError: the file is not a round selection (named in the message).
    """
    with open(path, encoding="utf-8") as f:
        try:
            content = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not a round selection (invalid JSON: {err}).") from err
    if not isinstance(content, dict) or "selected" not in content:
        raise ValueError(f"{path} is not a round selection (a JSON object with 'selected').")
    chosen = [(str(e["id"]), int(e["label"]), float(e["confidence"])) for e in content["selected"]]
    return chosen, float(content.get("score_seconds", 0.0))
