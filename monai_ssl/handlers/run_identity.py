"""What makes a training run itself (config, data, run length), saved in each of its checkpoints.

A checkpoint folder belongs to one run. :class:`RunIdentity` is one more entry of the checkpoint
(``{"network": ..., "optimizer": ..., "run": RunIdentity.state_dict()}``), so a resume can tell
whether the latest file was written by the run it is asked to continue: the same config, the same
data (a fingerprint of the datalists, so a moved dataset folder still matches) and, unless the user
changed it, the same number of epochs (see :mod:`monai_ssl.handlers.run_length` for how that number
is chosen).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "RunIdentity",
    "datalist_fingerprint",
    "read_run_identity",
]

logger = logging.getLogger("monai_ssl")

RUN_KEY = "run"  # the entry of a checkpoint that holds the RunIdentity


def _common_folder(paths: Sequence[str]) -> str:
    """The folder all ``paths`` lie in ('' when they share none)."""
    try:
        common = os.path.commonpath(paths)
    except ValueError:  # absolute and relative mixed, or different drives
        return ""
    return common if len(paths) > 1 else os.path.dirname(common)


def datalist_fingerprint(datalist: Sequence[Mapping[str, Any]], keys: Sequence[str] = ("image", "label")) -> str:
    """A short hash of the items of a datalist: their ``keys`` values, paths taken relative to the data folder.

    The order of the items does not matter, nor where the data folder lies (a dataset moved or mounted
    elsewhere keeps its fingerprint); adding, removing or relabelling an item changes it.
    """
    images = [str(item[keys[0]]) for item in datalist if isinstance(item, Mapping) and keys[0] in item]
    root = _common_folder(images) if images else ""
    rows = []
    for item in datalist:
        values = []
        for key in keys:
            value = item.get(key) if isinstance(item, Mapping) else item
            text = str(value.tolist() if hasattr(value, "tolist") else value)
            if root and isinstance(value, (str, os.PathLike)) and text.startswith(root):
                text = os.path.relpath(text, root)
            values.append(text)
        rows.append("\t".join(values))
    return hashlib.sha1("\n".join(sorted(rows)).encode("utf-8")).hexdigest()[:16]


class RunIdentity:
    """The identity of a training run, saved in its checkpoints and checked on resume.

    Put it in :class:`~monai_ssl.handlers.CheckpointSaver` and
    :class:`~monai_ssl.handlers.ResumeFromCheckpoint` (their ``run_identity`` argument): each checkpoint then
    carries ``state_dict()``, and :meth:`check` tells whether a saved identity belongs to this run.

    Args:
        config: what trains, e.g. ``"byolmed2d/train.json"``.
        data: name -> datalist of the run (e.g. ``{"train": ..., "validation": ...}``) or one datalist;
            only their fingerprints and sizes are kept.
        num_epochs: the run length (epochs).
        dataset: where the data was read from, shown in messages (not compared).
        settings: JSON values a resumed run must share with the saved one, e.g. ``{"method": "dino"}``: a
            run started with ``--method dino`` is not continued with ``--method byol``. A saved run without
            one of these values (written before it was recorded) is not refused for it.

    Attributes:
        run_id: a random id of this run, replaced by the saved one on resume (so later checkpoints
            keep the id of the run they continue).
    """

    def __init__(
        self,
        config: str,
        data: Mapping[str, Sequence[Mapping]] | Sequence[Mapping],
        num_epochs: int,
        dataset: str | os.PathLike | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        named = dict(data) if isinstance(data, Mapping) else {"train": data}
        self.settings = dict(settings or {})
        self.config = str(config)
        self.num_epochs = int(num_epochs)
        self.dataset = os.path.abspath(os.fspath(dataset)) if dataset is not None else ""
        self.num_items = {name: len(items) for name, items in named.items()}
        self.fingerprints = {name: datalist_fingerprint(items) for name, items in named.items()}
        self.run_id = uuid.uuid4().hex[:12]

    def state_dict(self) -> dict[str, Any]:
        """Plain values only, so ``torch.load(..., weights_only=True)`` reads them."""
        return {
            "config": self.config,
            "dataset": self.dataset,
            "num_items": dict(self.num_items),
            "fingerprints": dict(self.fingerprints),
            "num_epochs": self.num_epochs,
            "run_id": self.run_id,
            "settings": dict(self.settings),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the saved run: check it is this run, then take its ``run_id``.

        Raises:
            ValueError: the saved run trained another config or other data (see :meth:`check`).
        """
        problem = self.check(state)
        if problem:
            raise ValueError(problem)
        self.run_id = str(state["run_id"])

    def check(self, state: Mapping[str, Any] | None) -> str:
        """Why a saved identity is not this run's ('' when it is; the run length may differ)."""
        if not state:
            return "it was written without a run record (by an older monai_ssl or another program)"
        if state.get("config") != self.config:
            return f"it was written by {state.get('config')}, not {self.config}"
        if state.get("fingerprints") != self.fingerprints:
            return (
                f"it was trained on other data ({describe(state)}); this run reads {self._data_text()}. Resume with "
                "the same --dataset_dir and data settings"
            )
        saved = state.get("settings") or {}
        clashes = [f"{key}={saved[key]!r}" for key, value in self.settings.items() if key in saved and saved[key] != value]
        if clashes:
            asked = ", ".join(f"{key}={value!r}" for key, value in self.settings.items() if key in saved and saved[key] != value)
            return (
                f"it was started with {', '.join(clashes)}; this run asks for {asked}. Resume with the run's own "
                "settings (e.g. --method as it started), or start a new run in another folder"
            )
        return ""

    def _data_text(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.num_items.items())
        return f"{self.dataset or 'its data'} ({counts} items)"


def describe(state: Mapping[str, Any] | None) -> str:
    """One line about a saved run: its config, data and run length."""
    if not state:
        return "a run without run record"
    counts = ", ".join(f"{n} {name}" for name, n in dict(state.get("num_items", {})).items())
    return f"{state.get('config')} on {state.get('dataset') or '?'} ({counts} items), {state.get('num_epochs')} epochs"


def read_checkpoint_entries(path: str | os.PathLike) -> Mapping[str, Any]:
    """A checkpoint's entries, memory-mapped: reading the small ones (run identity, engine state) leaves
    the weights on disk (``torch.load(..., weights_only=True, mmap=True)``).

    Raises:
        RuntimeError: the file cannot be read as a checkpoint (the message names it).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # truncated or not a torch file
        raise RuntimeError(f"cannot read checkpoint {os.fspath(path)}: {e}") from e
    return checkpoint if isinstance(checkpoint, Mapping) else {}


def read_run_identity(path: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any] | None:
    """The run identity saved in the checkpoint ``path`` (or its entries), None when it has none.

    Raises:
        RuntimeError: the file cannot be read as a checkpoint (the message names it).
    """
    entries = path if isinstance(path, Mapping) else read_checkpoint_entries(path)
    state = entries.get(RUN_KEY)
    return dict(state) if isinstance(state, Mapping) else None
