"""``PseudoLabelRounds``: the self-training rounds of the paper as an Ignite engine, one iteration per round."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events, State
from monai.data import CacheDataset, DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from torch import nn

from monai_ssl.utils import atomic_path, atomic_torch_save, atomic_write_text

from .scoring import score_pool
from .selection import check_selection_args, select_pseudo_labels

__all__ = ["PseudoLabelRounds", "round_scalars"]

logger = logging.getLogger("monai_ssl")

STATE_FILE = "state.json"
ROUNDS_FILE = "rounds.csv"
TABLE_FILE = "pseudo_labels.csv"
BEST_FILE = "best_model.pt"
OPTIMIZER_FILE = "optimizer_last.pt"
_FORMAT = 1


def _unwrap(network: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel``/``DataParallel`` wrapper."""
    return network.module if isinstance(network, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else network


def _true_label(item: dict) -> int | None:
    """The item's own scalar class label, if it carries one (used for analysis only, never for training)."""
    value = item.get("label")
    if value is None:
        return None
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        return None
    return int(array.reshape(()).item())


def _csv_text(header: Sequence[str], rows: Sequence[dict]) -> str:
    """``rows`` as CSV text with the given column order (missing and None values left empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in header})
    return buffer.getvalue()


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


class PseudoLabelRounds(Engine):
    """Pseudo-labeling rounds of "Integration of Self-Supervised BYOL in Semi-Supervised Medical Image Recognition".

    After BYOL pre-training, the classifier is fine-tuned on the labeled set (round 0); then each
    round ``r = 1 .. num_rounds`` predicts the remaining unlabeled pool, moves the most confident
    predictions (:func:`~monai_ssl.pseudo_label.select_pseudo_labels`: the top ``num_samples``,
    optionally above ``threshold`` and balanced per class) into the pseudo-labeled set, retrains on
    labeled + pseudo-labeled images and evaluates. The round with the best validation metric is kept.

    Each engine iteration is one round, so MONAI/Ignite handlers attach as usual:
    ``Events.ITERATION_COMPLETED`` fires when a round has finished and been saved, with
    ``engine.state.iteration == round + 1``, ``engine.state.round`` the round, ``engine.state.output``
    and ``engine.state.metrics`` its numbers (``val_<metric_name>``, ``n_labeled``, ``n_pseudo``
    (all pseudo-labels so far), ``n_new`` (added this round), ``n_pool``, ``pseudo_label_accuracy``
    (agreement of the new pseudo-labels with the true labels that unlabeled items may carry; absent
    when none do), ``train_seconds``, ``score_seconds``, ``val_seconds``, ``best_round``,
    ``best_metric``); log them with :func:`round_scalars`.

    **Training each round.** The weights carry over from round to round (the paper retrains the
    same model; nothing is re-initialised), and so do the optimizer and trainer handlers. Before
    each round the engine replaces the training items (``train_dataset.data``, or ``set_data`` for
    a ``CacheDataset``) and runs ``trainer`` for ``E`` more epochs, ``E`` being the trainer's
    ``max_epochs`` at construction: ``trainer.state.max_epochs = epoch + E``, ``epoch_length =
    len(trainer.data_loader)`` (recomputed, as the training set grows; a fixed ``epoch_length``
    given to the trainer is overridden) and ``iteration = epoch * epoch_length``, then
    ``trainer.run()``. Trainer epochs and iterations therefore keep counting across rounds, so
    epoch-numbered checkpoints and TensorBoard curves do not collide. Then
    ``evaluator.run(trainer.state.epoch)`` and ``evaluator.state.metrics[metric_name]`` is the score;
    a round is better when ``evaluator.metric_cmp_fn(new, best)`` (default: greater), ties keep the
    earlier round.

    **Training items.** Labeled items are copied with ``"pseudo": False`` added; pseudo-labeled
    items are copies of the pool items with ``"label"`` set to the predicted class (a 0-d
    ``np.int64`` array) and ``"pseudo": True``. A label an unlabeled item carries is never used for
    training; it is written to the table as ``true_label`` (scalar labels only).

    **Files** (all written atomically into ``output_dir`` after every round, ``state.json`` last):
    ``round_{r}.pt`` (network state dict), ``optimizer_last.pt`` (the trainer's optimizer state
    after the last round), ``rounds.csv`` (one row per round), ``pseudo_labels.csv`` (``id``,
    ``image`` (the path, empty for in-memory images), ``label``, ``confidence``, ``round``,
    ``true_label``) and ``state.json`` (the finished round, the pseudo-labels, the per-round rows,
    best round and metric, the trainer's epoch). At the end ``best_model.pt`` is a copy of the best
    round's weights, which are also loaded into ``network``; ``engine.state.best_round`` and
    ``engine.state.best_metric`` are set.

    **Resume.** With ``resume=True`` and a ``state.json`` in ``output_dir``, ``run()`` restores the
    pseudo-labeled set and pool, the tables, the best round, the weights of the last finished round,
    the optimizer state and the trainer's epoch, and continues with the next round; a run killed
    during round ``r`` repeats only round ``r``. A larger ``num_rounds`` than before extends a
    finished run. If every round is already done, ``run()`` only writes ``best_model.pt`` (no engine
    events fire). ``resume=False`` starts over at round 0 and overwrites the files.

    **Early stop** (logged): when the pool is empty, or nothing is selected (nothing reaches
    ``threshold``), at the start of a round. The engine then terminates without running that
    round (its ``ITERATION_STARTED`` handlers have fired, ``ITERATION_COMPLETED`` does not);
    ``Events.TERMINATE`` and ``Events.COMPLETED`` fire and ``engine.state.stop_reason`` says why.

    Args:
        trainer: a built MONAI ``SupervisedTrainer`` whose data loader iterates ``train_dataset``;
            its ``max_epochs`` is the number of epochs *per round*. The loader must not use
            ``persistent_workers`` (the workers would keep the old training set).
        evaluator: a MONAI ``SupervisedEvaluator`` that computes ``metric_name`` on the validation set.
        train_dataset: the ``monai.data.Dataset`` of the trainer's loader; its items are replaced each round.
        labeled: labeled items: dicts with ``"image"``, ``"id"`` and ``"label"``.
        unlabeled: the unlabeled pool: dicts with ``"image"`` and ``"id"`` (ids unique over both lists).
        network: the classifier the trainer trains (returns (B, K) logits or one binary logit).
        num_rounds: pseudo-labeling rounds after round 0 (0: fine-tune on the labeled set only).
        output_dir: folder of the tables, weights and ``state.json``.
        num_samples: pseudo-labels added per round (paper: 2000); ``None`` for all that qualify.
        threshold: minimum confidence of a pseudo-label, or ``None``.
        balance: take ``num_samples // K`` per predicted class.
        score_loader_kwargs: arguments of the ``monai.data.DataLoader`` that scores the pool
            (defaults: ``batch_size=32``, ``num_workers=0``, ``pin_memory`` on CUDA; no shuffling).
        device: where the network lives.
        amp: autocast when scoring the pool.
        metric_name: key of the validation metric in ``evaluator.state.metrics``.
        resume: continue from ``output_dir/state.json`` when it exists.
        score_transform: transform of the pool items when scoring (the evaluator's, without random
            augmentation); ``None`` takes ``evaluator.data_loader.dataset.transform``.

    Raises:
        ValueError / TypeError: at construction, for inconsistent inputs (named in the message).
    """

    def __init__(
        self,
        trainer: SupervisedTrainer,
        evaluator: SupervisedEvaluator,
        train_dataset: Dataset,
        labeled: Sequence[dict],
        unlabeled: Sequence[dict],
        network: nn.Module,
        num_rounds: int,
        output_dir: str | os.PathLike,
        num_samples: int | None = 2000,
        threshold: float | None = None,
        balance: bool = False,
        score_loader_kwargs: dict | None = None,
        device: str | torch.device = "cpu",
        amp: bool = False,
        metric_name: str = "accuracy",
        resume: bool = True,
        score_transform: Callable | None = None,
    ) -> None:
        super().__init__(self._run_round)
        if isinstance(num_rounds, bool) or not isinstance(num_rounds, (int, np.integer)) or num_rounds < 0:
            raise ValueError(f"`num_rounds` must be a non-negative integer, got {num_rounds!r}.")
        check_selection_args(num_samples, threshold, balance)
        self.labeled = self._check_items(labeled, "labeled", ("image", "id", "label"))
        self.unlabeled = self._check_items(unlabeled, "unlabeled", ("image", "id"))
        if not self.labeled:
            raise ValueError("`labeled` is empty; round 0 fine-tunes on the labeled set, which needs items.")
        overlap = {str(x["id"]) for x in self.labeled} & {str(x["id"]) for x in self.unlabeled}
        if overlap:
            raise ValueError(f"ids must be unique across labeled and unlabeled items; both hold {sorted(overlap)[:5]}.")
        self._check_trainer(trainer, train_dataset)
        trained = getattr(trainer, "network", network)
        trained = getattr(trained, "_orig_mod", trained)  # torch.compile wrapper
        if _unwrap(trained) is not _unwrap(network):
            raise ValueError(
                "`network` is not the network the trainer trains; pass the same module so that the saved and "
                "scored weights are the trained ones."
            )
        score_loader_kwargs = dict(score_loader_kwargs or {})
        if score_loader_kwargs.get("shuffle"):
            raise ValueError("`score_loader_kwargs` must not shuffle; the pool is scored in order.")
        if score_transform is None:
            eval_dataset = getattr(getattr(evaluator, "data_loader", None), "dataset", None)
            if not hasattr(eval_dataset, "transform"):
                raise ValueError(
                    "cannot take the evaluator's transform (its data loader has no dataset with `transform`); "
                    "pass `score_transform` explicitly."
                )
            score_transform = eval_dataset.transform
        self.trainer = trainer
        self.evaluator = evaluator
        self.train_dataset = train_dataset
        self.network = network
        self.num_rounds = int(num_rounds)
        self.output_dir = Path(output_dir)
        self.num_samples = None if num_samples is None else int(num_samples)
        self.threshold = None if threshold is None else float(threshold)
        self.balance = bool(balance)
        self.score_loader_kwargs = score_loader_kwargs
        self.device = torch.device(device)
        self.amp = amp
        self.metric_name = metric_name
        self.resume = resume
        self.score_transform = score_transform
        self.epochs_per_round = int(trainer.state.max_epochs)
        self._by_id = {str(x["id"]): x for x in self.unlabeled}
        self._reset_progress()
        self.add_event_handler(Events.ITERATION_STARTED, self._select_for_round)
        self.add_event_handler(Events.COMPLETED, self._finish)

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_items(items: Sequence[dict], name: str, keys: Sequence[str]) -> list[dict]:
        items = list(items)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise TypeError(f"`{name}[{i}]` must be a dict, got {type(item).__name__}.")
            missing = [k for k in keys if k not in item]
            if missing:
                raise ValueError(f"`{name}[{i}]` has no {missing} (keys present: {sorted(item)}).")
        ids = [str(x["id"]) for x in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"`{name}` repeats ids; every item needs a unique 'id'.")
        return items

    @staticmethod
    def _check_trainer(trainer: Any, train_dataset: Any) -> None:
        name = type(trainer).__name__
        for attr in ("data_loader", "state", "run"):
            if not hasattr(trainer, attr):
                raise TypeError(f"`trainer` must be a MONAI SupervisedTrainer; {name} has no `{attr}`.")
        epochs = trainer.state.max_epochs
        if not epochs or epochs < 1:
            raise ValueError(f"the trainer's max_epochs (epochs per round) must be >= 1, got {epochs}.")
        if not hasattr(train_dataset, "data"):
            kind = type(train_dataset).__name__
            raise TypeError(f"`train_dataset` must be a monai.data.Dataset with `.data`, got {kind}.")
        loader = trainer.data_loader
        if getattr(loader, "dataset", train_dataset) is not train_dataset:
            raise ValueError(
                "the trainer's data loader does not iterate `train_dataset`; the rounds replace that dataset's "
                "items, so build the trainer's loader over the same object."
            )
        if getattr(loader, "persistent_workers", False):
            raise ValueError(
                "the trainer's data loader uses persistent_workers=True; its workers would keep the first round's "
                "training set. Use persistent_workers=False."
            )

    # ---------------------------------------------------------------- progress
    def _reset_progress(self) -> None:
        """Start from round 0: the whole pool unlabeled, no pseudo-labels, no rounds."""
        self.pool: list[dict] = list(self.unlabeled)
        self.pseudo: list[dict] = []
        self.records: list[dict] = []
        self.best_round: int | None = None
        self.best_metric: float | None = None
        self._pending: list[tuple[str, int, float]] = []
        self._score_seconds = 0.0
        self.state.round = -1
        self.state.best_round = None
        self.state.best_metric = None
        self.state.stop_reason = None
        self.state.metrics = {}

    def _training_items(self) -> list[dict]:
        """Labeled items plus the pseudo-labeled copies of pool items, for the trainer's dataset."""
        items = [{**x, "pseudo": False} for x in self.labeled]
        for entry in self.pseudo:
            item = self._by_id[entry["id"]]
            items.append({**item, "label": np.asarray(entry["label"], dtype=np.int64), "pseudo": True})
        return items

    def _set_training_items(self) -> None:
        items = self._training_items()
        if isinstance(self.train_dataset, CacheDataset):
            self.train_dataset.set_data(items)
        else:
            self.train_dataset.data = items

    # ------------------------------------------------------------------ rounds
    def _score(self) -> tuple[np.ndarray, list[str]]:
        kwargs = {"batch_size": 32, "num_workers": 0, "pin_memory": self.device.type == "cuda"}
        kwargs.update(self.score_loader_kwargs)
        kwargs["shuffle"] = False
        loader = DataLoader(Dataset(self.pool, transform=self.score_transform), **kwargs)
        return score_pool(self.network, loader, self.device, amp=self.amp)

    def _select_for_round(self, engine: PseudoLabelRounds) -> None:
        """At the start of round r >= 1: score the pool and choose the pseudo-labels, or stop."""
        r = engine.state.iteration - 1
        self._pending, self._score_seconds = [], 0.0
        if r == 0:
            return
        if not self.pool:
            self._stop(r, "the unlabeled pool is empty")
            return
        start = time.perf_counter()
        probabilities, ids = self._score()
        self._pending = select_pseudo_labels(probabilities, ids, self.num_samples, self.threshold, self.balance)
        self._score_seconds = time.perf_counter() - start
        if not self._pending:
            self._stop(r, f"no pseudo-label selected (threshold={self.threshold}, num_samples={self.num_samples})")

    def _stop(self, r: int, reason: str) -> None:
        logger.info(f"pseudo-labeling stops before round {r}: {reason}.")
        self.state.stop_reason = reason
        self.terminate()

    def _add_pseudo_labels(self, r: int) -> float | None:
        """Move the chosen items from the pool to the pseudo-labeled set; agreement with true labels."""
        chosen = {i for i, _, _ in self._pending}
        hits, known = 0, 0
        for item_id, label, confidence in self._pending:
            self.pseudo.append({"id": item_id, "label": label, "confidence": confidence, "round": r})
            true = _true_label(self._by_id[item_id])
            if true is not None:
                known += 1
                hits += int(true == label)
        self.pool = [x for x in self.pool if str(x["id"]) not in chosen]
        self._pending = []
        return hits / known if known else None

    def _train(self) -> None:
        """Run the trainer for ``epochs_per_round`` more epochs over the current training items."""
        try:
            n = len(self.trainer.data_loader)
        except TypeError as e:
            raise TypeError("the trainer's data loader must have a length (a map-style dataset).") from e
        if n < 1:
            raise ValueError(
                f"the trainer's data loader gives no batch for {len(self.train_dataset.data)} training items "
                "(drop_last=True with a batch larger than the set?)."
            )
        state = self.trainer.state
        start = int(state.epoch or 0)
        state.epoch_length = n
        state.iteration = start * n
        state.max_epochs = start + self.epochs_per_round
        self.trainer.run()

    def _evaluate(self) -> float:
        self.evaluator.run(max(int(self.trainer.state.epoch), 1))
        metrics = self.evaluator.state.metrics
        if self.metric_name not in metrics:
            raise KeyError(
                f"the evaluator computed no '{self.metric_name}' metric (it has {sorted(metrics)}); set "
                "`metric_name` or add the metric to the evaluator."
            )
        value = metrics[self.metric_name]
        return float(value.item() if isinstance(value, torch.Tensor) else value)

    def _is_better(self, value: float) -> bool:
        if self.best_metric is None or math.isnan(self.best_metric):
            return True
        cmp = getattr(self.evaluator, "metric_cmp_fn", lambda a, b: a > b)
        return bool(cmp(value, self.best_metric))

    def _run_round(self, engine: PseudoLabelRounds, _: Any) -> dict[str, Any]:
        """One round: add the chosen pseudo-labels, retrain, evaluate, save."""
        r = engine.state.iteration - 1
        score_seconds = self._score_seconds
        n_new = len(self._pending)
        agreement = self._add_pseudo_labels(r)
        self._set_training_items()
        start = time.perf_counter()
        self._train()
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        value = self._evaluate()
        val_seconds = time.perf_counter() - start
        if self._is_better(value):
            self.best_round, self.best_metric = r, value
        record = {
            "round": r,
            "n_labeled": len(self.labeled),
            "n_pseudo": len(self.pseudo),
            "n_new": n_new,
            "n_pool": len(self.pool),
            f"val_{self.metric_name}": value,
            "pseudo_label_accuracy": agreement,
            "train_seconds": train_seconds,
            "score_seconds": score_seconds,
            "val_seconds": val_seconds,
            "best_round": self.best_round,
            "best_metric": self.best_metric,
        }
        self.records.append(record)
        self._save_round(r)
        self._publish(record)
        logger.info(
            f"pseudo-label round {r}: {n_new} new, {len(self.pseudo)} pseudo-labeled, {len(self.pool)} left in the "
            f"pool; val {self.metric_name} {value:.4f} (best {self.best_metric:.4f}, round {self.best_round})"
        )
        return dict(engine.state.metrics)

    def _publish(self, record: dict) -> None:
        self.state.round = record["round"]
        self.state.best_round, self.state.best_metric = self.best_round, self.best_metric
        self.state.metrics.update({k: v for k, v in record.items() if v is not None})
        if record["pseudo_label_accuracy"] is None:
            self.state.metrics.pop("pseudo_label_accuracy", None)

    # ------------------------------------------------------------------- files
    def _rounds_header(self) -> list[str]:
        return [
            "round", "n_labeled", "n_pseudo", "n_new", "n_pool", f"val_{self.metric_name}", "pseudo_label_accuracy",
            "train_seconds", "score_seconds", "val_seconds", "best_round", "best_metric",
        ]  # fmt: skip

    def _table_rows(self) -> list[dict]:
        rows = []
        for entry in self.pseudo:
            item = self._by_id[entry["id"]]
            image = item["image"]
            rows.append(
                {
                    **entry,
                    "image": os.fspath(image) if isinstance(image, (str, os.PathLike)) else "",
                    "true_label": _true_label(item),
                }
            )
        return rows

    def _save_round(self, r: int) -> None:
        """Write the round's weights, optimizer, tables and, last, ``state.json`` (the commit point)."""
        out = self.output_dir
        atomic_torch_save(_unwrap(self.network).state_dict(), out / f"round_{r}.pt")
        optimizer = getattr(self.trainer, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "state_dict"):
            atomic_torch_save({"round": r, "optimizer": optimizer.state_dict()}, out / OPTIMIZER_FILE)
        atomic_write_text(_csv_text(self._rounds_header(), self.records), out / ROUNDS_FILE)
        table_header = ["id", "image", "label", "confidence", "round", "true_label"]
        atomic_write_text(_csv_text(table_header, self._table_rows()), out / TABLE_FILE)
        state = {
            "format": _FORMAT,
            "finished_round": r,
            "num_rounds": self.num_rounds,
            "trainer_epoch": int(self.trainer.state.epoch),
            "metric_name": self.metric_name,
            "best_round": self.best_round,
            "best_metric": self.best_metric,
            "settings": {"num_samples": self.num_samples, "threshold": self.threshold, "balance": self.balance},
            "n_labeled": len(self.labeled),
            "rounds": self.records,
            "pseudo_labels": self.pseudo,
        }
        atomic_write_text(json.dumps(state, indent=1), out / STATE_FILE)

    def _load_checkpoint(self) -> int:
        """Restore the progress saved in ``state.json``; return the next round to run (0 without one)."""
        path = self.output_dir / STATE_FILE
        if not path.is_file():
            logger.info(f"no {path}; pseudo-labeling starts at round 0.")
            return 0
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            finished = int(saved["finished_round"])
            entries, records = list(saved["pseudo_labels"]), list(saved["rounds"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RuntimeError(f"cannot read pseudo-labeling state {path}: {e}") from e
        if saved.get("metric_name") != self.metric_name:
            raise ValueError(
                f"{path} ranks rounds by '{saved.get('metric_name')}' but this run uses '{self.metric_name}'; "
                "use the same metric_name or another output_dir."
            )
        unknown = [e["id"] for e in entries if e["id"] not in self._by_id]
        if unknown:
            raise ValueError(
                f"{path} holds pseudo-labels of {len(unknown)} ids that are not in `unlabeled` (e.g. {unknown[:3]}); "
                "the unlabeled set changed since that run. Use another output_dir or resume=False."
            )
        weights = self.output_dir / f"round_{finished}.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{path} says round {finished} finished but {weights} is missing.")
        settings = {"num_samples": self.num_samples, "threshold": self.threshold, "balance": self.balance}
        if saved.get("settings") != settings or saved.get("n_labeled") != len(self.labeled):
            logger.warning(
                f"resuming {path} with other settings than it was made with (was {saved.get('settings')}, "
                f"{saved.get('n_labeled')} labeled; now {settings}, {len(self.labeled)} labeled)."
            )
        _unwrap(self.network).load_state_dict(torch.load(weights, map_location=self.device, weights_only=True))
        self._load_optimizer(finished)
        self.trainer.state.epoch = int(saved.get("trainer_epoch", 0))
        self.pseudo, self.records = entries, records
        taken = {e["id"] for e in entries}
        self.pool = [x for x in self.unlabeled if str(x["id"]) not in taken]
        self.best_round, self.best_metric = saved.get("best_round"), saved.get("best_metric")
        if records:
            self._publish(records[-1])
        logger.info(
            f"resuming pseudo-labeling from {path} after round {finished}: {len(self.pseudo)} pseudo-labeled, "
            f"{len(self.pool)} in the pool, best round {self.best_round}."
        )
        return finished + 1

    def _load_optimizer(self, finished: int) -> None:
        optimizer = getattr(self.trainer, "optimizer", None)
        path = self.output_dir / OPTIMIZER_FILE
        if optimizer is None or not path.is_file():
            return
        saved = torch.load(path, map_location=self.device, weights_only=True)
        if saved.get("round") != finished:
            logger.warning(f"{path} is from round {saved.get('round')}, not {finished}; optimizer state not restored.")
            return
        optimizer.load_state_dict(saved["optimizer"])

    def _finish(self, engine: PseudoLabelRounds | None = None) -> None:
        """Copy the best round's weights to ``best_model.pt`` and load them into the network."""
        if self.best_round is None:
            logger.warning("no pseudo-labeling round finished; no best model to keep.")
            return
        source = self.output_dir / f"round_{self.best_round}.pt"
        with atomic_path(self.output_dir / BEST_FILE) as tmp:
            shutil.copyfile(source, tmp)
        _unwrap(self.network).load_state_dict(torch.load(source, map_location=self.device, weights_only=True))
        self.state.best_round, self.state.best_metric = self.best_round, self.best_metric
        logger.info(
            f"best pseudo-labeling round {self.best_round} (val {self.metric_name} {self.best_metric:.4f}); "
            f"weights in {self.output_dir / BEST_FILE} and loaded into the network."
        )

    # --------------------------------------------------------------------- run
    def run(self) -> State:  # type: ignore[override]
        """Run (or, with ``resume``, continue) the rounds up to ``num_rounds``; return the engine state."""
        self._reset_progress()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            start = self._load_checkpoint()
        else:
            if (self.output_dir / STATE_FILE).is_file():
                logger.warning(f"resume=False: starting over at round 0; the files in {self.output_dir} are replaced.")
            start = 0
        total = self.num_rounds + 1
        if start >= total:
            logger.info(f"all {self.num_rounds} pseudo-labeling rounds already finished in {self.output_dir}.")
            self._finish()
            return self.state
        self.state.iteration, self.state.epoch = start, 0
        self.state.max_epochs, self.state.max_iters, self.state.epoch_length = 1, None, total
        return super().run(data=None, max_epochs=1, epoch_length=total)
