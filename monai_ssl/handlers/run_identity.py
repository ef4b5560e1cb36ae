"""What makes a training run itself (config, data, run length), saved in each of its checkpoints.

A checkpoint folder belongs to one run. :class:`RunIdentity` is one more entry of the checkpoint
(``{"network": ..., "optimizer": ..., "run": RunIdentity.state_dict()}``), so a resume can tell
whether the latest file was written by the run it is asked to continue: the same config, the same
data (a fingerprint of the datalists, so a moved dataset folder still matches) and, unless the user
changed it, the same number of epochs. :func:`run_length` gives the bundle configs their run length
before anything is built: the requested ``num_epochs``, else the epochs that make the requested
``num_steps`` optimizer steps, else the saved run's on resume, else the default.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import uuid
from collections.abc import Mapping, Sequence, Sized
from typing import Any

import torch

__all__ = [
    "RunIdentity",
    "datalist_fingerprint",
    "epochs_for_steps",
    "optimizer_steps_per_epoch",
    "read_run_identity",
    "run_length",
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
    ) -> None:
        named = dict(data) if isinstance(data, Mapping) else {"train": data}
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


def optimizer_steps_per_epoch(data_loader: Sized, accumulation_steps: int = 1) -> int:
    """Optimizer steps in one epoch over ``data_loader``: ``ceil(len(data_loader) / accumulation_steps)``.

    The trainers step once per ``accumulation_steps`` iterations and once more at the end of an epoch for
    a remainder (:attr:`~monai_ssl.engines.OptimizerStepTrainer.optimizer_steps_per_epoch`). Under multi-GPU
    training the loader's length is already this process's share (its ``DistributedSampler``), and every
    process steps together, so the count is the same on each. For :func:`run_length`'s ``steps_per_epoch``:
    ``"steps_per_epoch=monai_ssl.handlers.optimizer_steps_per_epoch(@train#dataloader, @accumulation_steps)"``.

    Raises:
        TypeError: the loader has no length (an iterable dataset: its epoch has no fixed number of steps).
        ValueError: ``accumulation_steps`` is not a positive integer.
    """
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"`accumulation_steps` must be a positive integer, got {accumulation_steps!r}.")
    try:
        iterations = len(data_loader)
    except TypeError as e:
        raise TypeError(
            f"the training loader ({type(data_loader).__name__}) has no length, so an epoch has no fixed number of "
            "optimizer steps; set the run length with `num_epochs` instead of `num_steps`."
        ) from e
    return math.ceil(iterations / accumulation_steps)


def _positive(value: Any, key: str, unit: str) -> int:
    """``value`` when it is a whole number >= 1 (not a bool); else a ``ValueError`` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{key}` must be a positive whole number of {unit}, got {value!r}.")
    return value


def epochs_for_steps(num_steps: int, steps_per_epoch: int) -> int:
    """The whole epochs that train at least ``num_steps`` optimizer steps: ``ceil(num_steps / steps_per_epoch)``.

    Raises:
        ValueError: either is not a positive integer (the message names the key; a ``steps_per_epoch`` of 0
            means one epoch of the training loader takes no step).
    """
    num_steps = _positive(num_steps, "num_steps", "optimizer steps")
    if steps_per_epoch == 0 and not isinstance(steps_per_epoch, bool):
        raise ValueError(
            "`steps_per_epoch` is 0: one epoch of the training data takes no optimizer step (fewer items than one "
            "batch, with drop_last?), so no number of epochs reaches `num_steps`. Lower the batch size or add data."
        )
    steps_per_epoch = _positive(steps_per_epoch, "steps_per_epoch", "optimizer steps")
    return math.ceil(num_steps / steps_per_epoch)


def run_length(
    num_epochs: int | None,
    default: int,
    resume: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    prefix: str = "checkpoint",
    num_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> int:
    """The number of epochs of a run: ``num_epochs`` if given, else enough epochs for ``num_steps`` if given,
    else the resumed run's, else ``default``.

    Meant for bundle configs, where ``num_epochs`` and ``num_steps`` are ``null`` unless the user sets one:
    ``"max_epochs": "$monai_ssl.handlers.run_length(@num_epochs, @default_num_epochs, @resume, @checkpoint_dir,
    num_steps=@num_steps, steps_per_epoch=len(@train#dataloader))"``.
    So ``--resume True`` alone continues the saved run to its own end, and ``--resume True --num_epochs 6``
    changes its length explicitly (:class:`~monai_ssl.handlers.ResumeFromCheckpoint` then logs that the
    schedules follow the new length).

    ``num_steps`` fixes the training by optimizer steps rather than epochs, so that runs on labeled sets of
    different sizes train equally long (the cross-teaching paper, Luo et al. 2022, "Semi-supervised medical
    image segmentation via cross teaching between CNN and Transformer", trains 30,000 iterations at every
    label fraction). The run then has ``ceil(num_steps / steps_per_epoch)`` epochs: at least ``num_steps``
    steps, the last epoch run to its end (the log says how many steps that makes). Like ``num_epochs`` it
    is an explicit length: on resume it wins over the saved run's (on the same data, which the run identity
    checks, it gives the same epochs).

    Args:
        num_epochs: the requested epochs (``None``: not set).
        default: the config's default epochs.
        resume: whether the run continues the latest checkpoint of ``checkpoint_dir``.
        checkpoint_dir: the run's checkpoint folder.
        prefix: file-name prefix of its checkpoints.
        num_steps: the requested optimizer steps (``None``: not set); excludes ``num_epochs``.
        steps_per_epoch: optimizer steps in one epoch (:func:`optimizer_steps_per_epoch`); needed with
            ``num_steps``, ignored without it.

    Raises:
        ValueError: both ``num_epochs`` and ``num_steps`` are set; ``num_epochs``, ``num_steps``,
            ``steps_per_epoch`` (with ``num_steps``) or ``default`` is not a positive integer; ``num_steps``
            without ``steps_per_epoch``. The message names the key.
    """
    from monai_ssl.handlers.checkpoint import latest_checkpoint  # a sibling module that imports this one

    if num_epochs is not None and num_steps is not None:
        raise ValueError(
            f"`num_epochs` ({num_epochs!r}) and `num_steps` ({num_steps!r}) both set the run length: give one of "
            "them (num_steps trains a fixed number of optimizer steps whatever the data size; num_epochs a fixed "
            "number of passes over the data)."
        )
    if num_epochs is not None:
        return _positive(num_epochs, "num_epochs", "epochs")
    if num_steps is not None:
        if steps_per_epoch is None:
            raise ValueError(
                "`num_steps` needs `steps_per_epoch` (the optimizer steps of one epoch) to give a number of epochs; "
                "this config does not pass it to run_length: set the run length with `num_epochs`."
            )
        epochs = epochs_for_steps(num_steps, steps_per_epoch)
        total = epochs * steps_per_epoch
        logger.info(
            f"num_steps={num_steps}: {epochs} epoch(s) of {steps_per_epoch} optimizer steps, {total} steps in all "
            "(at least num_steps; the last epoch runs to its end)"
        )
        return epochs
    if resume and checkpoint_dir is not None:
        latest = latest_checkpoint(checkpoint_dir, prefix)
        if latest is not None:
            saved = read_run_identity(latest)
            if saved and isinstance(saved.get("num_epochs"), int):
                logger.info(f"resuming: the run length is the saved run's, {saved['num_epochs']} epochs ({latest.name})")
                return int(saved["num_epochs"])
    return _positive(default, "default_num_epochs", "epochs")
