"""``PseudoLabelRounds``: the self-training rounds of the paper as an Ignite engine, one iteration per round."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events, State
from ignite.handlers import Checkpoint
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.utils import atomic_torch_save

from .inputs import check_flag, check_items, check_trainer
from .retraining import evaluate, set_training_items, train_keeping_best_epoch, train_more_epochs, training_items
from .round_state import RoundProgress, latest_round, load_round, round_path, save_round
from .scoring import score_pool
from .selection import check_selection_args, select_pseudo_labels
from .tables import metric_column, true_label, write_tables

__all__ = ["BEST_FILE", "PseudoLabelRounds", "round_scalars"]

logger = logging.getLogger("monai_ssl")

BEST_FILE = "best_model.pt"


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

    After BYOL pre-training (Feng et al.), the classifier is fine-tuned on the labeled set (round 0);
    then each round ``r = 1 .. num_rounds`` predicts the unlabeled pool, turns the most confident
    predictions (:func:`~monai_ssl.pseudo_label.select_pseudo_labels`: the top ``num_samples``,
    optionally above ``threshold`` and balanced per class) into pseudo-labels, retrains on labeled +
    pseudo-labeled images and evaluates. The round with the best validation metric is kept.

    Each engine iteration is one round, so MONAI/Ignite handlers attach as usual:
    ``Events.ITERATION_COMPLETED`` fires when a round has finished and been saved, with
    ``engine.state.iteration == round + 1``, ``engine.state.round`` the round, ``engine.state.output``
    and ``engine.state.metrics`` its numbers: ``val_<metric>`` (``metric_name``, prefixed with
    ``val_`` unless it already is), ``n_labeled``, ``n_pseudo`` (pseudo-labels in training),
    ``n_new`` (pseudo-labeled this round but not in the previous one), ``n_changed`` and
    ``n_dropped`` (earlier pseudo-labels that changed class or left; 0 unless
    ``rescore_pseudo_labels``), ``n_pool`` (unlabeled items not pseudo-labeled), ``pseudo_label_accuracy``
    (agreement of the new pseudo-labels with true labels unlabeled items may carry; absent when none
    do), ``train_seconds``, ``score_seconds``, ``val_seconds``, ``best_round``, ``best_metric``. Log
    them with :func:`round_scalars`. ``engine.progress`` (a :class:`RoundProgress`) holds the
    pseudo-labels and per-round records; its ``state_dict()`` is what the checkpoints save.

    **Training each round.** The trainer's dataset gets
    :func:`~monai_ssl.pseudo_label.retraining.training_items`: the labeled items, and the
    pseudo-labeled pool items labeled with their *predicted* class (a label an unlabeled item carries
    is never trained on, only written to the table as ``true_label``). Then ``trainer`` runs ``E``
    more epochs (:func:`~monai_ssl.pseudo_label.retraining.train_more_epochs`; ``E`` is its
    ``max_epochs`` at construction; trainer epochs keep counting across rounds) and
    ``evaluator.state.metrics[metric_name]`` scores the round, better when
    ``evaluator.metric_cmp_fn(new, best)`` (default: greater); ties keep the earlier round.

    **Files** in ``output_dir``, all written atomically after every round: ``rounds.csv`` (one row
    per round, the numbers above), ``pseudo_labels.csv`` (``id``, ``image`` (the path, empty for
    in-memory images), ``label``, ``confidence``, ``round`` (when the item joined), ``true_label``),
    then, last, ``round_{r}.pt``: the round's checkpoint ``{"network": state dict, "optimizer":
    state dict, "rounds": engine.progress.state_dict()}`` in the format of the trainers' checkpoints
    (``monai_ssl.networks.load_weights(net, path, key="network")`` reads its weights). At the end
    ``best_model.pt`` holds the best round's network state dict, which is also loaded into
    ``network``; ``engine.state.best_round`` and ``engine.state.best_metric`` are set.

    **Resume.** With ``resume=True``, ``run()`` loads the highest ``round_{r}.pt`` with
    :meth:`ignite.handlers.Checkpoint.load_objects` (weights, optimizer, progress; the trainer's
    epoch) and continues with round ``r + 1``: a run killed during a round repeats only that round.
    A larger ``num_rounds`` extends a finished run; if every round is done, ``run()`` only writes
    ``best_model.pt`` (no events fire). Other settings than the saved ones are logged as a warning;
    another ``metric_name`` is an error. ``resume=False`` starts over at round 0 (a round file
    numbered above the round just saved is removed, being from an earlier run).

    **Early stop** (logged) at the start of a round when there is nothing to score (the pool is
    empty; with ``rescore_pseudo_labels``, the unlabeled set) or nothing is selected (nothing reaches
    ``threshold``): the engine terminates without running that round (``ITERATION_STARTED`` has
    fired, ``ITERATION_COMPLETED`` does not; ``TERMINATE`` and ``COMPLETED`` fire) and
    ``engine.state.stop_reason`` says why.

    Args:
        trainer: a built MONAI ``SupervisedTrainer`` whose data loader iterates ``train_dataset``
            (without ``persistent_workers``); its ``max_epochs`` is the number of epochs *per round*.
        evaluator: a MONAI ``SupervisedEvaluator`` that computes ``metric_name`` on the validation set.
        train_dataset: the ``monai.data.Dataset`` of the trainer's loader; its items are replaced each round.
        labeled: labeled items: dicts with ``"image"``, ``"id"`` and ``"label"``.
        unlabeled: the unlabeled pool: dicts with ``"image"`` and ``"id"`` (ids unique over both lists).
        network: the classifier the trainer trains (returns (B, K) logits or one binary logit).
        num_rounds: pseudo-labeling rounds after round 0 (0: fine-tune on the labeled set only).
        output_dir: folder of the tables and checkpoints.
        num_samples: pseudo-labels added per round (paper: 2000); ``None`` for all that qualify.
        threshold: minimum confidence of a pseudo-label, or ``None``.
        balance: take ``num_samples // K`` per predicted class.
        score_loader_kwargs: arguments of the ``monai.data.DataLoader`` that scores the pool
            (defaults: ``batch_size=32``, ``num_workers=0``, ``pin_memory`` on CUDA; no shuffling).
        device: where the network lives.
        amp: autocast when scoring the pool.
        amp_dtype: its dtype (default bfloat16 where the device has it, else float16).
        channels_last: score NHWC image batches (faster on tensor cores).
        metric_name: key of the validation metric in ``evaluator.state.metrics``.
        resume: continue from the last ``round_{r}.pt`` in ``output_dir`` when there is one.
        score_transform: transform of the pool items when scoring (the evaluator's, without random
            augmentation); ``None`` takes ``evaluator.data_loader.dataset.transform``.
        rescore_pseudo_labels: default False, as in the paper: pseudo-labeled images join the
            training set for good and leave the pool; later rounds score only what remains. True:
            every round ``r`` scores the *whole* unlabeled set and keeps the ``r * num_samples``
            most confident (``threshold`` and ``balance`` applied as in ``select_pseudo_labels``), so
            an earlier pseudo-label can change class or drop out (an ablation of that choice).
        restart_each_round: default False, as in the paper, which retrains the same model: weights
            and optimizer state carry over from round to round. True: before training round
            ``r >= 1``, the network *and optimizer* state saved at the end of round 0 (the fine-tuned
            start, ``round_0.pt``) are loaded again, so each round starts as round 1 does and
            differs only by its training set; the pool is still scored with the previous round's
            model, and trainer epochs keep counting.
        best_epoch_per_round: default False, as in the paper: a round ends with the weights of its
            last epoch. True: the evaluator runs after every epoch of a round (round 0 included) and
            the round ends with the weights of its best validated epoch
            (:func:`~monai_ssl.pseudo_label.retraining.train_keeping_best_epoch`), which then score
            the pool and are saved; the round's metric is that epoch's.

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
        rescore_pseudo_labels: bool = False,
        restart_each_round: bool = False,
        best_epoch_per_round: bool = False,
        amp_dtype: torch.dtype | str | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__(self._run_round)
        if isinstance(num_rounds, bool) or not isinstance(num_rounds, (int, np.integer)) or num_rounds < 0:
            raise ValueError(f"`num_rounds` must be a non-negative integer, got {num_rounds!r}.")
        check_selection_args(num_samples, threshold, balance)
        self.rescore_pseudo_labels = check_flag(rescore_pseudo_labels, "rescore_pseudo_labels")
        self.restart_each_round = check_flag(restart_each_round, "restart_each_round")
        self.best_epoch_per_round = check_flag(best_epoch_per_round, "best_epoch_per_round")
        self.labeled = check_items(labeled, "labeled", ("image", "id", "label"))
        self.unlabeled = check_items(unlabeled, "unlabeled", ("image", "id"))
        if not self.labeled:
            raise ValueError("`labeled` is empty; round 0 fine-tunes on the labeled set, which needs items.")
        overlap = {str(x["id"]) for x in self.labeled} & {str(x["id"]) for x in self.unlabeled}
        if overlap:
            raise ValueError(f"ids must be unique across labeled and unlabeled items; both hold {sorted(overlap)[:5]}.")
        check_trainer(trainer, train_dataset, network)
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
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.metric_name = metric_name
        self.resume = resume
        self.score_transform = score_transform
        self.epochs_per_round = int(trainer.state.max_epochs)
        self._by_id = {str(x["id"]): x for x in self.unlabeled}
        self.progress = RoundProgress(
            {
                "metric_name": metric_name,
                "num_samples": self.num_samples,
                "threshold": self.threshold,
                "balance": self.balance,
                "rescore_pseudo_labels": self.rescore_pseudo_labels,
                "restart_each_round": self.restart_each_round,
                "best_epoch_per_round": self.best_epoch_per_round,
                "n_labeled": len(self.labeled),
            }
        )
        self._reset_progress()
        self.add_event_handler(Events.ITERATION_STARTED, self._select_for_round)
        self.add_event_handler(Events.COMPLETED, self._finish)

    # ---------------------------------------------------------------- progress
    def _reset_progress(self) -> None:
        """Start from round 0: the whole pool unlabeled, no pseudo-labels, no rounds."""
        self.progress.reset()
        self._pending: list[tuple[str, int, float]] = []
        self._score_seconds = 0.0
        self.state.round = -1
        self.state.best_round = None
        self.state.best_metric = None
        self.state.stop_reason = None
        self.state.metrics = {}

    @property
    def pool(self) -> list[dict]:
        """The unlabeled items that are not pseudo-labeled now."""
        taken = self.progress.pseudo_ids
        return [x for x in self.unlabeled if str(x["id"]) not in taken]

    def _checkpoint_objects(self) -> dict[str, Any]:
        """What a round checkpoint holds: name -> object with ``state_dict``/``load_state_dict``."""
        objects: dict[str, Any] = {"network": unwrap_parallel(self.network)}
        optimizer = getattr(self.trainer, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "state_dict"):
            objects["optimizer"] = optimizer
        objects["rounds"] = self.progress
        return objects

    # ------------------------------------------------------------------ rounds
    def _select_for_round(self, engine: PseudoLabelRounds) -> None:
        """At the start of round r >= 1: score the candidates and choose the pseudo-labels, or stop."""
        r = engine.state.iteration - 1
        self._pending, self._score_seconds = [], 0.0
        if r == 0:
            return
        candidates = self.unlabeled if self.rescore_pseudo_labels else self.pool
        if not candidates:
            self._stop(r, "the unlabeled pool is empty")
            return
        start = time.perf_counter()
        kwargs = {"batch_size": 32, "num_workers": 0, "pin_memory": self.device.type == "cuda"}
        kwargs.update(self.score_loader_kwargs, shuffle=False)
        loader = DataLoader(Dataset(candidates, transform=self.score_transform), **kwargs)
        probabilities, ids = score_pool(
            self.network, loader, self.device, amp=self.amp, amp_dtype=self.amp_dtype, channels_last=self.channels_last
        )
        n = self.num_samples
        if self.rescore_pseudo_labels and n is not None:
            n *= r  # the whole set so far: r rounds of num_samples
        self._pending = select_pseudo_labels(probabilities, ids, n, self.threshold, self.balance)
        self._score_seconds = time.perf_counter() - start
        if not self._pending:
            self._stop(r, f"no pseudo-label selected (threshold={self.threshold}, num_samples={self.num_samples})")

    def _stop(self, r: int, reason: str) -> None:
        logger.info(f"pseudo-labeling stops before round {r}: {reason}.")
        self.state.stop_reason = reason
        self.terminate()

    def _restart_from_round_0(self) -> None:
        """Load the network and optimizer state saved at the end of round 0."""
        path = round_path(self.output_dir, 0)
        if not path.is_file():
            raise FileNotFoundError(f"restart_each_round needs round 0's checkpoint {path}, which is missing.")
        checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        objects = {k: v for k, v in self._checkpoint_objects().items() if k != "rounds" and k in checkpoint}
        Checkpoint.load_objects(to_load=objects, checkpoint=checkpoint)

    def _run_round(self, engine: PseudoLabelRounds, _: Any) -> dict[str, Any]:
        """One round: take the chosen pseudo-labels, retrain, evaluate, save."""
        r = engine.state.iteration - 1
        score_seconds = self._score_seconds
        new, changed, dropped = self.progress.update(self._pending, r, replace=self.rescore_pseudo_labels)
        self._pending = []
        truths = [(true_label(self._by_id[e["id"]]), e["label"]) for e in new]
        known = [(t, p) for t, p in truths if t is not None]
        agreement = sum(t == p for t, p in known) / len(known) if known else None
        set_training_items(self.train_dataset, training_items(self.labeled, self.progress.pseudo_labels, self._by_id))
        if self.restart_each_round and r >= 1:
            self._restart_from_round_0()
        better = getattr(self.evaluator, "metric_cmp_fn", lambda a, b: a > b)
        start = time.perf_counter()
        if self.best_epoch_per_round:  # validation runs inside, after every epoch
            value = train_keeping_best_epoch(
                self.trainer, self.epochs_per_round, self.evaluator, self.metric_name, self.network, better
            )
            train_seconds, val_seconds = time.perf_counter() - start, 0.0
        else:
            train_more_epochs(self.trainer, self.epochs_per_round)
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            value = evaluate(self.evaluator, int(self.trainer.state.epoch), self.metric_name)
            val_seconds = time.perf_counter() - start
        progress = self.progress
        progress.consider(r, value, better)
        n_pseudo = len(progress.pseudo_labels)
        record = {
            "round": r,
            "n_labeled": len(self.labeled),
            "n_pseudo": n_pseudo,
            "n_new": len(new),
            "n_changed": changed,
            "n_dropped": dropped,
            "n_pool": len(self.unlabeled) - n_pseudo,
            metric_column(self.metric_name): value,
            "pseudo_label_accuracy": agreement,
            "train_seconds": train_seconds,
            "score_seconds": score_seconds,
            "val_seconds": val_seconds,
            "best_round": progress.best_round,
            "best_metric": progress.best_metric,
        }
        progress.finish(record, int(self.trainer.state.epoch))
        write_tables(self.output_dir, progress.records, progress.pseudo_labels, self._by_id, self.metric_name)
        save_round(self.output_dir, r, self._checkpoint_objects())  # last: the commit point of the round
        self._publish(record)
        logger.info(
            f"pseudo-label round {r}: {len(new)} new, {changed} changed, {dropped} dropped, {n_pseudo} pseudo-labeled, "
            f"{record['n_pool']} left in the pool; val {self.metric_name} {value:.4f} "
            f"(best {progress.best_metric:.4f}, round {progress.best_round})"
        )
        return dict(engine.state.metrics)

    def _publish(self, record: dict) -> None:
        self.state.round = record["round"]
        self.state.best_round, self.state.best_metric = self.progress.best_round, self.progress.best_metric
        self.state.metrics.update({k: v for k, v in record.items() if v is not None})
        if record["pseudo_label_accuracy"] is None:
            self.state.metrics.pop("pseudo_label_accuracy", None)

    # ------------------------------------------------------------ resume, end
    def _resume(self) -> int:
        """Restore the last finished round's checkpoint; return the next round to run (0 without one)."""
        path = latest_round(self.output_dir)
        if path is None:
            logger.info(f"no round checkpoint in {self.output_dir}; pseudo-labeling starts at round 0.")
            return 0
        load_round(path, self._checkpoint_objects(), map_location=self.device)
        progress = self.progress
        unknown = [e["id"] for e in progress.pseudo_labels if e["id"] not in self._by_id]
        if unknown:
            raise ValueError(
                f"{path} holds pseudo-labels of {len(unknown)} ids that are not in `unlabeled` (e.g. {unknown[:3]}); "
                "the unlabeled set changed since that run. Use another output_dir or resume=False."
            )
        self.trainer.state.epoch = progress.trainer_epoch
        # the tables are written before the checkpoint: rewrite them in case the run died in between
        write_tables(self.output_dir, progress.records, progress.pseudo_labels, self._by_id, self.metric_name)
        if progress.records:
            self._publish(progress.records[-1])
        logger.info(
            f"resuming pseudo-labeling from {path} after round {progress.finished_round}: "
            f"{len(progress.pseudo_labels)} pseudo-labeled, best round {progress.best_round}."
        )
        return progress.finished_round + 1

    def _finish(self, engine: PseudoLabelRounds | None = None) -> None:
        """Save the best round's weights as ``best_model.pt`` and load them into the network."""
        best, metric = self.progress.best_round, self.progress.best_metric
        if best is None:
            logger.warning("no pseudo-labeling round finished; no best model to keep.")
            return
        weights = torch.load(round_path(self.output_dir, best), map_location=self.device, weights_only=True)["network"]
        atomic_torch_save(weights, self.output_dir / BEST_FILE)
        unwrap_parallel(self.network).load_state_dict(weights)
        self.state.best_round, self.state.best_metric = best, metric
        logger.info(
            f"best pseudo-labeling round {best} (val {self.metric_name} {metric:.4f}); "
            f"weights in {self.output_dir / BEST_FILE} and loaded into the network."
        )

    def run(self) -> State:  # type: ignore[override]
        """Run (or, with ``resume``, continue) the rounds up to ``num_rounds``; return the engine state."""
        self._reset_progress()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            start = self._resume()
        else:
            if latest_round(self.output_dir) is not None:
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
