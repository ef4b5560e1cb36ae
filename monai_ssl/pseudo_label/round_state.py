"""The progress of the pseudo-labeling rounds and its checkpoints, one ``round_{r}.pt`` per finished round.

The self-training rounds of "Integration of Self-Supervised BYOL in Semi-Supervised Medical Image
Recognition" (Feng et al.) are saved the way the trainers save theirs: a checkpoint is a dict of
``state_dict()``s, ``{"network": ..., "optimizer": ..., "rounds": ...}``, written atomically with
:func:`~monai_ssl.utils.atomic_torch_save` and restored with
:meth:`ignite.handlers.Checkpoint.load_objects` from ``torch.load(..., weights_only=True)``.
``"rounds"`` is the state dict of :class:`RoundProgress`, made of plain Python values only.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.base import Serializable
from ignite.handlers import Checkpoint
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.utils import atomic_torch_save

__all__ = ["RoundProgress", "latest_round", "load_round", "round_path", "save_round"]

logger = logging.getLogger("monai_ssl")

FORMAT = 2
_ROUND_FILE = re.compile(r"round_(\d+)\.pt")
_ROUND_FOLDER = re.compile(r"round_(\d+)")


class RoundProgress(Serializable):
    """What the rounds have done so far: the pseudo-labels, one record per round, the best round.

    A pseudo-label entry is ``{"id", "label", "confidence", "round"}`` with ``round`` the round
    in which the item (last) joined the pseudo-labeled set; the entries are kept in that order.
    ``settings`` are the options of the run; the settings found in a loaded state dict are kept in
    ``saved_settings`` for the caller to compare.

    Args:
        settings: plain values describing the run (selection options, ``metric_name``, ...).
    """

    _state_dict_all_req_keys = (
        "format", "finished_round", "trainer_epoch", "pseudo_labels", "records", "best_round", "best_metric",
        "settings",
    )  # fmt: skip

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.reset()

    def reset(self) -> None:
        """Back to before round 0: no pseudo-labels, no finished round."""
        self.finished_round = -1
        self.trainer_epoch = 0
        self.pseudo_labels: list[dict] = []
        self.records: list[dict] = []
        self.best_round: int | None = None
        self.best_metric: float | None = None
        self.saved_settings: dict | None = None

    @property
    def pseudo_ids(self) -> set[str]:
        """Ids of the items that are pseudo-labeled now."""
        return {e["id"] for e in self.pseudo_labels}

    def update(self, chosen: Sequence[tuple[str, int, float]], r: int, replace: bool) -> tuple[list[dict], int, int]:
        """Take round ``r``'s selection ``(id, label, confidence)`` into the pseudo-labeled set.

        Args:
            chosen: the selection of :func:`~monai_ssl.pseudo_label.select_pseudo_labels`.
            r: the round.
            replace: False (the paper): ``chosen`` comes from the remaining pool and is added to the
                set. True: ``chosen`` is the whole new set; earlier entries not chosen again drop
                out, those chosen again keep their round and take the new label and confidence.

        Returns:
            ``(new entries, number of kept entries whose label changed, number of dropped entries)``.
        """
        picked = {str(i): (int(label), float(confidence)) for i, label, confidence in chosen}
        kept, changed = [], 0
        for entry in self.pseudo_labels:
            if not replace:
                kept.append(entry)
            elif entry["id"] in picked:
                label, confidence = picked[entry["id"]]
                changed += int(label != entry["label"])
                kept.append({**entry, "label": label, "confidence": confidence})
        before = self.pseudo_ids
        new = [
            {"id": str(i), "label": int(label), "confidence": float(confidence), "round": int(r)}
            for i, label, confidence in chosen
            if str(i) not in before
        ]
        dropped = len(self.pseudo_labels) - len(kept)
        self.pseudo_labels = kept + new
        return new, changed, dropped

    def consider(self, r: int, value: float, better: Callable[[float, float], bool]) -> None:
        """Make round ``r`` the best one when ``better(value, best)`` (or nothing is best yet, or best is NaN)."""
        if self.best_metric is None or math.isnan(self.best_metric) or better(value, self.best_metric):
            self.best_round, self.best_metric = int(r), float(value)

    def finish(self, record: Mapping[str, Any], trainer_epoch: int) -> None:
        """Close round ``record["round"]``: keep its record and the epoch its run's trainer ended at."""
        self.records.append(dict(record))
        self.finished_round = int(record["round"])
        self.trainer_epoch = int(trainer_epoch)

    def state_dict(self) -> OrderedDict:
        """The progress as plain Python values (loadable with ``torch.load(..., weights_only=True)``)."""
        return OrderedDict(
            format=FORMAT,
            finished_round=self.finished_round,
            trainer_epoch=self.trainer_epoch,
            pseudo_labels=[dict(e) for e in self.pseudo_labels],
            records=[dict(r) for r in self.records],
            best_round=self.best_round,
            best_metric=self.best_metric,
            settings=dict(self.settings),
        )

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore the progress of :meth:`state_dict`; the saved settings go to ``saved_settings``."""
        super().load_state_dict(state_dict)
        if state_dict["format"] != FORMAT:
            raise ValueError(f"round state format {state_dict['format']} is not supported (expected {FORMAT}).")
        self.finished_round = int(state_dict["finished_round"])
        self.trainer_epoch = int(state_dict["trainer_epoch"])
        self.pseudo_labels = [dict(e) for e in state_dict["pseudo_labels"]]
        self.records = [dict(r) for r in state_dict["records"]]
        self.best_round = state_dict["best_round"]
        self.best_metric = state_dict["best_metric"]
        self.saved_settings = dict(state_dict["settings"])


def round_path(output_dir: str | os.PathLike, r: int) -> Path:
    """The checkpoint of round ``r``: ``output_dir/round_{r}.pt``."""
    return Path(output_dir) / f"round_{r}.pt"


def _round_files(output_dir: str | os.PathLike) -> dict[int, Path]:
    folder = Path(output_dir)
    if not folder.is_dir():
        return {}
    return {int(m.group(1)): p for p in folder.iterdir() if (m := _ROUND_FILE.fullmatch(p.name))}


def _round_folders(output_dir: str | os.PathLike) -> dict[int, Path]:
    folder = Path(output_dir)
    if not folder.is_dir():
        return {}
    return {int(m.group(1)): p for p in folder.iterdir() if p.is_dir() and (m := _ROUND_FOLDER.fullmatch(p.name))}


def latest_round(output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint of the last finished round in ``output_dir``, or None."""
    files = _round_files(output_dir)
    return files[max(files)] if files else None


def _state_dict(obj: Any) -> Any:
    """A state dict as is, or the ``state_dict()`` of an object (a parallel wrapper's inner module's)."""
    if isinstance(obj, Mapping):
        return obj
    return (unwrap_parallel(obj) if isinstance(obj, nn.Module) else obj).state_dict()


def save_round(output_dir: str | os.PathLike, r: int, entries: Mapping[str, Any]) -> Path:
    """Write ``{name: state dict}`` atomically to ``round_{r}.pt``; return its path.

    ``entries`` holds state dicts, or objects whose ``state_dict()`` is saved. Round files numbered
    above ``r``, and the folders ``round_<k>/`` of those rounds, are left over from an abandoned run
    (the rounds after ``r`` have not run in this one) and are removed, so that a resume never picks
    them up.
    """
    path = atomic_torch_save({name: _state_dict(obj) for name, obj in entries.items()}, round_path(output_dir, r))
    for k, stale in sorted(_round_files(output_dir).items()):
        if k > r:
            logger.info(f"removing {stale}, left over from an earlier run that got further than round {r}.")
            stale.unlink(missing_ok=True)
    for k, folder in sorted(_round_folders(output_dir).items()):
        if k > r:
            logger.info(f"removing {folder}, left over from an earlier run that got further than round {r}.")
            shutil.rmtree(folder, ignore_errors=True)
    return path


def load_round(path: str | os.PathLike, to_load: Mapping[str, Any], map_location: Any = "cpu") -> dict:
    """Load round checkpoint ``path`` into ``to_load`` (one entry must be ``"rounds"``: a :class:`RoundProgress`).

    Entries of ``to_load`` other than ``"rounds"`` that the file lacks are skipped with a warning.
    The saved ``metric_name`` setting must equal the current one; other differing settings are
    logged as a warning (the run goes on with the current ones).

    Returns:
        the checkpoint dict as read.

    Raises:
        RuntimeError: the file cannot be read or has no ``"rounds"`` entry.
        ValueError: the saved rounds ranked by another metric.
    """
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise RuntimeError(f"cannot read pseudo-labeling checkpoint {path}: {e}") from e
    if not isinstance(checkpoint, Mapping) or "rounds" not in checkpoint:
        raise RuntimeError(
            f"{path} is not a pseudo-labeling round checkpoint (no 'rounds' entry; an older version kept the "
            "round state in state.json). Start over with resume=False or use another output_dir."
        )
    missing = [k for k in to_load if k not in checkpoint]
    if missing:
        logger.warning(f"{path} holds no {missing}; those are not restored.")
    Checkpoint.load_objects(to_load={k: v for k, v in to_load.items() if k in checkpoint}, checkpoint=checkpoint)
    progress: RoundProgress = to_load["rounds"]
    saved, current = progress.saved_settings or {}, progress.settings
    if saved.get("metric_name") != current.get("metric_name"):
        raise ValueError(
            f"{path} ranks rounds by '{saved.get('metric_name')}' but this run uses '{current.get('metric_name')}'; "
            "use the same metric_name or another output_dir."
        )
    keys = sorted(set(saved) | set(current))
    changed = {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}
    if changed:
        described = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        logger.warning(f"resuming {path} with other settings than it was made with ({described}).")
    return checkpoint
