"""``PseudoLabelRounds``: the self-training rounds of the paper as an Ignite engine, one iteration per round.

Each round is a plain run of the bundle's fine-tuning config in its own folder
(:mod:`~monai_ssl.pseudo_label.round_folder`); this engine only chooses the pseudo-labels, starts the
runs and keeps the record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events, State
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel

from .inputs import check_flag, check_labeled_and_unlabeled, check_settings
from .round_datalist import read_selection
from .round_folder import ROUND_KEYS, RoundFolder, prepare_round, publish_best_round, run_round
from .round_state import RoundProgress, latest_round, load_round, round_path, save_round
from .scoring import score_items
from .selection import check_selection_args, select_pseudo_labels
from .tables import metric_column, true_label, write_tables

__all__ = ["BEST_FILE", "PseudoLabelRounds"]

logger = logging.getLogger("monai_ssl")

BEST_FILE = "best_model.pt"


class PseudoLabelRounds(Engine):
    """Pseudo-labeling rounds of "Integration of Self-Supervised BYOL in Semi-Supervised Medical Image Recognition".

    After BYOL pre-training (Feng et al.), the classifier is fine-tuned on the labeled set (round 0);
    then each round ``r = 1 .. num_rounds`` predicts the unlabeled pool with round ``r - 1``'s model,
    turns the most confident predictions (:func:`~monai_ssl.pseudo_label.select_pseudo_labels`: the top
    ``num_samples``, optionally above ``threshold`` and balanced per class) into pseudo-labels and
    trains on labeled + pseudo-labeled images (each with its *predicted* class). The round with the
    best validation metric is kept.

    **A round is a plain run** of ``config_file`` (the bundle's ``finetune.json``) in
    ``output_dir/round_<r>/``, built afresh by :func:`~monai_ssl.utils.bundle_workflow.run_config_workflow`
    with ``settings`` (the user's settings, the same for every round) and
    :func:`~monai_ssl.pseudo_label.round_folder.round_overrides` (its folder, its ``datalist.json``,
    validation, the state it starts from): round ``r >= 1`` starts from the weights and optimizer state
    of round ``r - 1`` (or, with ``restart_each_round``, of round 0), round 0 from the pre-trained
    encoder. Its metric is its evaluator's ``best_metric`` (the key metric, which must be
    ``metric_name``; better by the evaluator's ``metric_cmp_fn``, ties keep the earlier round), its
    model the ``model.pt`` its best-model saver wrote.

    Each engine iteration is one round, so Ignite handlers attach as usual: ``Events.ITERATION_COMPLETED``
    fires when a round has finished and been saved, with ``engine.state.iteration == round + 1``,
    ``engine.state.round``, ``engine.state.workflow`` (the round's finished
    ``monai.bundle.ConfigWorkflow``), ``engine.state.output`` and ``engine.state.metrics``: ``val_<metric>``,
    ``n_labeled``, ``n_pseudo``, ``n_new``, ``n_changed`` and ``n_dropped`` (0 unless
    ``rescore_pseudo_labels``), ``n_pool``, ``pseudo_label_accuracy`` (agreement of the new pseudo-labels
    with true labels the unlabeled items may carry; absent when none do), ``train_seconds``,
    ``score_seconds``, ``val_seconds``, ``best_round``, ``best_metric``. Log them with :func:`round_scalars`.

    **Files** in ``output_dir``, written atomically after every round: ``rounds.csv``,
    ``pseudo_labels.csv`` (``id``, ``image``, ``label``, ``confidence``, ``round``, ``true_label``), then,
    last, ``round_{r}.pt`` ``{"network", "optimizer", "rounds"}`` (the round's model, its trainer's last
    optimizer state, ``engine.progress.state_dict()``). At the end ``best_model.pt`` and its
    ``best_model.settings.json`` are the best round's ``model.pt`` and settings
    (:func:`~monai_ssl.networks.publish_model`).

    **Resume** (``resume=True``): the progress of the highest ``round_{r}.pt`` is loaded and round ``r + 1``
    goes on: finished rounds are not run again; a round whose folder was prepared continues with the
    pseudo-labels it chose (``selection.json``) from its own last checkpoint. A larger ``num_rounds``
    extends a finished run. Other settings than the saved ones are logged; another ``metric_name`` is an
    error. ``resume=False`` starts over at round 0, replacing the folders and files of an earlier run.

    **Early stop** (logged) at the start of a round when there is nothing to score or nothing is
    selected: the engine terminates without running that round and ``engine.state.stop_reason`` says why.

    Args:
        config_file: the fine-tuning config each round runs.
        labeled: labeled items (``"image"``, ``"id"``, ``"label"``), as the fine-tuning config makes them.
        unlabeled: the unlabeled pool (``"image"``, ``"id"``; ids unique over both lists).
        network: a network of the fine-tuning config's architecture, on ``device``, used to score the pool.
        num_rounds: pseudo-labeling rounds after round 0.
        output_dir: folder of the rounds.
        score_transform: transform of the pool items when scoring (the validation preprocessing).
        settings: config id -> value given to every round's run (the user's settings); not the ids of
            :data:`~monai_ssl.pseudo_label.round_folder.ROUND_KEYS`.
        num_samples: pseudo-labels added per round (paper: 2000); ``None`` for all that qualify.
        threshold: minimum confidence of a pseudo-label, or ``None``.
        balance: take ``num_samples // K`` per predicted class.
        score_loader_kwargs: arguments of the ``monai.data.DataLoader`` that scores the pool
            (defaults: ``batch_size=32``, ``num_workers=0``, ``pin_memory`` on CUDA; no shuffling).
        device, amp, amp_dtype, channels_last: scoring on ``device``, with autocast in ``amp_dtype``, NHWC.
        metric_name: the validation metric (the evaluator's key metric), ``rounds.csv`` column ``val_<metric>``.
        resume: continue the rounds found in ``output_dir``.
        rescore_pseudo_labels: False (the paper): pseudo-labeled images stay in the training set and leave
            the pool. True: every round ``r`` scores the whole unlabeled set and keeps the
            ``r * num_samples`` most confident, so an earlier pseudo-label can change class or drop out.
        restart_each_round: False (the paper): round ``r`` starts from round ``r - 1``'s weights and
            optimizer state. True: every round ``r >= 1`` starts from round 0's; the pool is still
            scored with the previous round's model.
        best_epoch_per_round: False (the paper): a round is validated once, after its last epoch, whose
            weights it keeps. True: validated after every epoch (round 0 included), it keeps its best epoch.

    Raises:
        ValueError / TypeError: at construction, for inconsistent inputs (named in the message).
    """

    def __init__(
        self,
        config_file: str | os.PathLike,
        labeled: Sequence[dict],
        unlabeled: Sequence[dict],
        network: nn.Module,
        num_rounds: int,
        output_dir: str | os.PathLike,
        score_transform: Callable | None,
        settings: Mapping[str, Any] | None = None,
        num_samples: int | None = 2000,
        threshold: float | None = None,
        balance: bool = False,
        score_loader_kwargs: dict | None = None,
        device: str | torch.device = "cpu",
        amp: bool = False,
        amp_dtype: torch.dtype | str | None = None,
        channels_last: bool = False,
        metric_name: str = "val_accuracy",
        resume: bool = True,
        rescore_pseudo_labels: bool = False,
        restart_each_round: bool = False,
        best_epoch_per_round: bool = False,
    ) -> None:
        super().__init__(self._run_round)
        if isinstance(num_rounds, bool) or not isinstance(num_rounds, (int, np.integer)) or num_rounds < 0:
            raise ValueError(f"`num_rounds` must be a non-negative integer, got {num_rounds!r}.")
        if not Path(config_file).is_file():
            raise FileNotFoundError(
                f"the fine-tuning config of the rounds, {config_file}, does not exist (set finetune_config)."
            )
        check_selection_args(num_samples, threshold, balance)
        self.rescore_pseudo_labels = check_flag(rescore_pseudo_labels, "rescore_pseudo_labels")
        self.restart_each_round = check_flag(restart_each_round, "restart_each_round")
        self.best_epoch_per_round = check_flag(best_epoch_per_round, "best_epoch_per_round")
        self.resume = check_flag(resume, "resume")
        self.settings = check_settings(settings, ROUND_KEYS)
        self.labeled, self.unlabeled = check_labeled_and_unlabeled(labeled, unlabeled)
        score_loader_kwargs = dict(score_loader_kwargs or {})
        if score_loader_kwargs.get("shuffle"):
            raise ValueError("`score_loader_kwargs` must not shuffle; the pool is scored in order.")
        self.config_file = Path(config_file)
        self.network = network
        self.num_rounds = int(num_rounds)
        self.output_dir = Path(output_dir)
        self.num_samples = None if num_samples is None else int(num_samples)
        self.threshold = None if threshold is None else float(threshold)
        self.balance = bool(balance)
        self.score_transform = score_transform
        self.score_loader_kwargs = score_loader_kwargs
        self.device = torch.device(device)
        self.amp, self.amp_dtype, self.channels_last = amp, amp_dtype, channels_last
        self.metric_name = metric_name
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
        self._first_round = 0
        self._reset_progress()
        self.add_event_handler(Events.ITERATION_STARTED, self._select_for_round)
        self.add_event_handler(Events.COMPLETED, self._finish)

    # ---------------------------------------------------------------- progress
    def _reset_progress(self) -> None:
        """Start from round 0: the whole pool unlabeled, no pseudo-labels, no rounds."""
        self.progress.reset()
        self._pending: list[tuple[str, int, float]] = []
        self._score_seconds = 0.0
        self._continuing = False
        self.state.round = -1
        self.state.workflow = None
        self.state.best_round = None
        self.state.best_metric = None
        self.state.stop_reason = None
        self.state.metrics = {}

    @property
    def pool(self) -> list[dict]:
        """The unlabeled items that are not pseudo-labeled now."""
        taken = self.progress.pseudo_ids
        return [x for x in self.unlabeled if str(x["id"]) not in taken]

    # ------------------------------------------------------------------ rounds
    def _select_for_round(self, engine: PseudoLabelRounds) -> None:
        """At the start of round r: take the choice of a prepared round being resumed, or score and choose."""
        r = engine.state.iteration - 1
        self._pending, self._score_seconds, self.state.workflow = [], 0.0, None
        folder = RoundFolder.of(self.output_dir, r)
        self._continuing = self.resume and r == self._first_round and folder.is_prepared()
        if r == 0:
            return
        if self._continuing:
            self._pending, self._score_seconds = read_selection(folder.selection)
            logger.info(f"round {r} goes on with the {len(self._pending)} pseudo-labels of {folder.selection}.")
            return
        candidates = self.unlabeled if self.rescore_pseudo_labels else self.pool
        if not candidates:
            self._stop(r, "the unlabeled pool is empty")
            return
        start = time.perf_counter()
        weights = torch.load(round_path(self.output_dir, r - 1), map_location=self.device, weights_only=True)
        unwrap_parallel(self.network).load_state_dict(weights["network"])  # the previous round's model
        probabilities, ids = score_items(
            self.network, candidates, self.score_transform, self.device, self.score_loader_kwargs,
            amp=self.amp, amp_dtype=self.amp_dtype, channels_last=self.channels_last,
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

    def _run_round(self, engine: PseudoLabelRounds, _: Any) -> dict[str, Any]:
        """One round: take the chosen pseudo-labels, run the fine-tuning config in the round's folder, save."""
        r = engine.state.iteration - 1
        folder = RoundFolder.of(self.output_dir, r)
        chosen, score_seconds = self._pending, self._score_seconds
        new, changed, dropped = self.progress.update(chosen, r, replace=self.rescore_pseudo_labels)
        self._pending = []
        labeled_ids = [str(x["id"]) for x in self.labeled]
        prepare_round(folder, labeled_ids, self.progress.pseudo_labels, chosen, score_seconds, self._continuing)
        known = [(t, e["label"]) for e in new if (t := true_label(self._by_id[e["id"]])) is not None]
        agreement = sum(t == p for t, p in known) / len(known) if known else None

        resumes = self._continuing and folder.has_checkpoint()
        initial = None if r == 0 or resumes else round_path(self.output_dir, 0 if self.restart_each_round else r - 1)
        doing = "resuming" if resumes else "running"
        logger.info(f"pseudo-label round {r}: {doing} {self.config_file.name} in {folder.root}")
        run = run_round(
            self.config_file, self.settings, folder, r, resumes, self.best_epoch_per_round, initial, self.metric_name
        )
        value = run.metric
        progress = self.progress
        progress.consider(r, value, run.better)
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
            "train_seconds": run.seconds - run.val_seconds,
            "score_seconds": score_seconds,
            "val_seconds": run.val_seconds,
            "best_round": progress.best_round,
            "best_metric": progress.best_metric,
        }
        progress.finish(record, run.epoch)
        write_tables(self.output_dir, progress.records, progress.pseudo_labels, self._by_id, self.metric_name)
        save_round(self.output_dir, r, {"network": run.model, "optimizer": run.optimizer, "rounds": progress})
        self.state.workflow = run.workflow  # the round is saved: round_{r}.pt is its commit point
        folder.drop_checkpoints()
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
        """Restore the progress of the last finished round; return the next round to run (0 without one)."""
        path = latest_round(self.output_dir)
        if path is None:
            logger.info(f"no round checkpoint in {self.output_dir}; pseudo-labeling starts at round 0.")
            return 0
        load_round(path, {"rounds": self.progress}, map_location="cpu")
        progress = self.progress
        unknown = [e["id"] for e in progress.pseudo_labels if e["id"] not in self._by_id]
        if unknown:
            raise ValueError(
                f"{path} holds pseudo-labels of {len(unknown)} ids that are not in `unlabeled` (e.g. {unknown[:3]}); "
                "the unlabeled set changed since that run. Use another output_dir or resume=False."
            )
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
        """Publish the best round's model and settings as ``best_model.pt`` (+ ``best_model.settings.json``)."""
        self.state.workflow = None
        best, metric = self.progress.best_round, self.progress.best_metric
        if best is None:
            logger.warning("no pseudo-labeling round finished; no best model to keep.")
            return
        target = publish_best_round(self.output_dir, best, BEST_FILE)
        self.state.best_round, self.state.best_metric = best, metric
        logger.info(f"best pseudo-labeling round {best} (val {self.metric_name} {metric:.4f}); model in {target}.")

    def run(self) -> State:  # type: ignore[override]
        """Run (or, with ``resume``, continue) the rounds up to ``num_rounds``; return the engine state."""
        self._reset_progress()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            start = self._resume()
        else:
            if latest_round(self.output_dir) is not None:
                logger.warning(f"resume=False: starting over at round 0; the rounds in {self.output_dir} are replaced.")
            start = 0
        self._first_round = start
        total = self.num_rounds + 1
        if start >= total:
            logger.info(f"all {self.num_rounds} pseudo-labeling rounds already finished in {self.output_dir}.")
            self._finish()
            return self.state
        self.state.iteration, self.state.epoch = start, 0
        self.state.max_epochs, self.state.max_iters, self.state.epoch_length = 1, None, total
        return super().run(data=None, max_epochs=1, epoch_length=total)
