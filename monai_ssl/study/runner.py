"""Run a study's cells through a MONAI bundle, in this process.

A cell is two bundle runs: a protocol's training configs, then the evaluation config on the
model it saved. Pre-training is one more run. Each is ``monai_ssl.utils.run_config_workflow(...)``
(``initialize()``, ``run()`` and ``finalize()``), exactly what ``python -m monai.bundle run`` does, but
without starting a new Python (seconds saved per cell). Every run builds its own
``ConfigParser`` from the files, so no config state passes from one cell to the next; the
network, data loaders and engines of a finished run are released before the next one.
"""

from __future__ import annotations

import gc
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver

from monai_ssl.data.label_split import LabelBudgetError
from monai_ssl.utils import run_config_workflow

from .grid import Cell
from .spec import StudySpec, fill
from .training_length import STEP_COUNTER_NAME, TrainingStepCounter

__all__ = ["BundleRunner", "applicable_overrides", "label_budget_error", "read_metrics", "run_bundle", "skip_reason"]

logger = logging.getLogger("monai_ssl.study")


def label_budget_error(error: BaseException) -> LabelBudgetError | None:
    """The :class:`~monai_ssl.data.LabelBudgetError` behind ``error``, recognised by its type.

    The chain is walked through ``__cause__`` (else ``__context__``) because MONAI wraps an error
    raised while evaluating a config expression in a ``RuntimeError`` ("Failed to evaluate ...").
    The walk stops at the first other ``ValueError``: code that catches a budget error and raises
    a ``ValueError`` of its own from it has given it another meaning (e.g.
    :func:`~monai_ssl.data.train_val_datalists`' "cannot hold out val_fraction=..." is a validation
    split that does not fit, the same for every cell, not a label budget of this cell).

    Returns:
        The budget error, or ``None`` when ``error`` is not (or does not wrap) one.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LabelBudgetError):
            return current
        if isinstance(current, ValueError):
            return None
        current = current.__cause__ or current.__context__
    return None


def skip_reason(error: BaseException, prefixes: Sequence[str] = ()) -> str | None:
    """Why a cell that raised ``error`` is skipped rather than failed, or ``None`` when it failed.

    A cell is skipped when its label budget does not fit the data: ``error`` is, or wraps, a
    :class:`~monai_ssl.data.LabelBudgetError` (see :func:`label_budget_error`; no message is
    matched). For anything else a study lists in ``skip_errors``, a ``ValueError`` anywhere in the
    chain whose message starts with one of ``prefixes`` also counts (text, kept for study.json
    files that list their own errors).

    Returns:
        The message of that error (e.g. ``"split_labeled: fraction=0.01 leaves class 0 (5 items)
        with no labeled item; ..."``), or ``None``.
    """
    budget = label_budget_error(error)
    if budget is not None:
        return str(budget)
    if not prefixes:
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = str(current)
        if isinstance(current, ValueError) and any(message.startswith(p) for p in prefixes):
            return message
        current = current.__cause__ or current.__context__
    return None


def applicable_overrides(config_files: Sequence[str | Path], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides that the merged configs can take.

    A top-level key is always applicable (MONAI adds a key the config lacks); a nested id such as
    ``train#handlers#checkpoint#enabled`` only where its parent exists and can take it (an object,
    or a list for a numeric last part): MONAI would fail on a config without it (e.g. the
    evaluation config has no ``train`` section).
    """
    nested = [k for k in overrides if ReferenceResolver.split_id(k, last=True)[0]]
    if not nested:
        return dict(overrides)
    parser = ConfigParser()
    parser.read_config(f=[str(f) for f in config_files])
    kept = {}
    for key, value in overrides.items():
        parent, last = ReferenceResolver.split_id(key, last=True)
        if parent and (parent not in parser or not _can_hold(parser[parent], last)):
            names = [Path(f).name for f in config_files]
            logger.debug("override %s not applied to %s (no %s there)", key, names, parent)
            continue
        kept[key] = value
    return kept


def _can_hold(container: Any, key: str) -> bool:
    """Whether a config item can take the entry ``key`` (an object any key, a list an index)."""
    return isinstance(container, Mapping) or (isinstance(container, list) and key.isdigit())


def run_bundle(config_files: Sequence[str | Path], overrides: Mapping[str, Any]) -> Any:
    """Run the merged ``config_files`` with those ``overrides`` they can take; return the finished workflow.

    See :func:`monai_ssl.utils.run_config_workflow` (an override to ``None`` sets ``None``; ``finalize``
    runs even when the run fails).
    """
    files = [str(f) for f in config_files]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="parsing config_file")  # said once by the study, not per run
        return run_config_workflow(files, applicable_overrides(files, overrides))


def _lookup(report: Mapping[str, Any], key: str) -> Any:
    """``report[key]``, where a dotted key reads nested objects (``"saliency.in_mask_share_mean"``)."""
    if key in report:
        return report[key]
    value: Any = report
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def read_metrics(path: str | Path, metrics: Mapping[str, Sequence[str]]) -> dict[str, float | None]:
    """The study's metrics from a metrics JSON file: for each, the first listed key with a value.

    A key may be dotted to read a nested object: ``"saliency.in_mask_share_mean"``.

    Raises:
        FileNotFoundError: the evaluation wrote no metrics file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the evaluation wrote no metrics file at {path}")
    report = json.loads(path.read_text(encoding="utf-8"))
    values: dict[str, float | None] = {}
    for name, keys in metrics.items():
        found = [v for k in keys if isinstance(v := _lookup(report, k), (int, float)) and not isinstance(v, bool)]
        values[name] = float(found[0]) if found else None
    return values


def _release() -> None:
    """Free what a finished run left behind (engines hold reference cycles; GPU cache)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class BundleRunner:
    """Pre-trains and runs cells of a study with a bundle's configs (see :class:`~.spec.StudySpec`).

    Args:
        spec: the bundle's study description.
        dataset_dir: the dataset every run reads (``None``: the bundle's default, e.g. its demo).
        num_epochs: run length of every training, in epochs (``None``: the bundle's default).
        pretrain_epochs: run length of pre-training (``None``: ``num_epochs``).
        overrides: more settings for every config of every run (``image_size``, ``batch_size``, ...).
        num_steps: run length of every training in optimizer steps, instead of ``num_epochs``: each cell's
            training gets it as the spec's ``steps_key`` (see :mod:`~.training_length`); pre-training keeps
            ``pretrain_epochs``.

    Raises:
        ValueError: ``overrides`` sets a key the study sets itself (seed, label budget, folders, run
            length), or both ``num_epochs`` and ``num_steps`` are given.
    """

    def __init__(
        self,
        spec: StudySpec,
        dataset_dir: str | Path | None = None,
        num_epochs: int | None = None,
        pretrain_epochs: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        num_steps: int | None = None,
    ) -> None:
        if num_epochs is not None and num_steps is not None:
            raise ValueError(f"num_epochs ({num_epochs}) and num_steps ({num_steps}): give one of them, not both")
        self.spec = spec
        self.dataset_dir = None if dataset_dir is None else str(dataset_dir)
        self.num_epochs = num_epochs
        self.num_steps = num_steps
        self.pretrain_epochs = num_epochs if pretrain_epochs is None else pretrain_epochs
        self.overrides = dict(overrides or {})
        hints = {spec.seed_key: "--seeds", spec.epochs_key: "--num_epochs", spec.steps_key: "--num_steps",
                 spec.dataset_key: "--dataset_dir"}
        for keys in spec.label_budget.values():
            hints.update({k: "--fractions or --shots" for k in keys})
        reserved = set(spec.common_overrides) | set(spec.evaluate.overrides)
        if spec.pretrain is not None:
            reserved.add(spec.pretrain.encoder_key)
        if spec.method_key is not None:
            hints[spec.method_key] = "--protocols: each protocol's study.json 'method' picks its pre-training"
        hints.update({k: "--output_dir" for k in reserved - set(hints)})
        clash = sorted(set(self.overrides) & set(hints))
        if clash:
            raise ValueError(
                "overrides: " + "; ".join(f"{k!r} is set by the study for every run (use {hints[k]})" for k in clash)
            )

    @property
    def skip_errors(self) -> tuple[str, ...]:
        """Starts of ``ValueError`` messages that also skip a cell (study.json ``skip_errors``).

        A :class:`~monai_ssl.data.LabelBudgetError` skips a cell without being listed here.
        """
        return self.spec.skip_errors

    def _base(self, run_dir: Path, seed: int | None, epochs: int | None,
              steps: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Placeholder values and the overrides every run of ``run_dir`` gets (``epochs`` or ``steps``: its length)."""
        values: dict[str, Any] = {"bundle_root": str(self.spec.bundle_dir), "cell_dir": str(run_dir)}
        if seed is not None:
            values["seed"] = seed
        common = fill(self.spec.common_overrides, values, "study.json common_overrides")
        values.update({k: v for k, v in common.items() if isinstance(v, str) and k not in values})
        if seed is not None:
            common[self.spec.seed_key] = seed
        if epochs is not None:
            common[self.spec.epochs_key] = epochs
        if steps is not None:
            common[self.spec.steps_key] = steps
        if self.dataset_dir is not None:
            common[self.spec.dataset_key] = self.dataset_dir
        return values, common

    def pretrain(self, run_dir: Path, seed: int, resume: bool = False, method: str | None = None) -> Path:
        """Pre-train the encoder into ``run_dir`` and return the encoder file.

        Args:
            run_dir: the pre-training's folder.
            seed: its seed.
            resume: continue from the last checkpoint of a killed run in ``run_dir``.
            method: the pre-training method, set as the spec's ``pretrain.method_key`` (``None``: its
                ``default_method``; a spec without ``method_key`` sets none).

        Raises:
            FileNotFoundError: the run finished without writing the encoder file.
            ValueError: a ``method`` for a spec without ``pretrain.method_key``.
        """
        step = self.spec.pretrain
        if step is None:
            raise RuntimeError(f"the study of {self.spec.bundle_dir} has no pre-training step")
        if method is not None and step.method_key is None:
            raise ValueError(f"method {method!r}: the study of {self.spec.bundle_dir} has no pretrain.method_key, so "
                             "its pre-training takes no method")
        values, overrides = self._base(run_dir, seed, self.pretrain_epochs)
        if step.method_key is not None:
            method = method or step.default_method
            if method is None:
                raise ValueError(f"the study of {self.spec.bundle_dir} names no pretrain.default_method: give the "
                                 "method to pre-train")
            overrides[step.method_key] = method
        overrides.update(fill(step.overrides, values, "study.json pretrain"))
        if resume:
            overrides.update(step.resume_overrides)
        overrides.update(self.overrides)
        run_bundle(step.config_file, overrides)
        _release()
        encoder = Path(fill(step.encoder_file, values, "study.json pretrain.encoder_file"))
        if not encoder.is_file():
            raise FileNotFoundError(f"pre-training finished but wrote no encoder at {encoder}")
        return encoder

    def run_cell(self, cell: Cell, cell_dir: Path, encoder: Path | None = None) -> dict[str, Any]:
        """Train ``cell``'s protocol into ``cell_dir``, evaluate it on the test split, return the numbers.

        Args:
            cell: protocol, label budget and seed.
            cell_dir: the cell's folder (empty).
            encoder: the pre-trained encoder, for protocols that start from it.

        A label-free protocol (study.json ``"label_free": true``, run at fraction 0) gets no
        ``label_budget`` overrides and records ``n_labeled`` 0 without reading ``labeled_count_id``.

        Returns:
            ``{"metrics": {name: value or None}, "n_labeled": int or None, "steps": int or None}``: ``steps``
            are the optimizer steps the training took, counted by a :class:`~.training_length.TrainingStepCounter`
            among its trainer's named handlers (``None``: the config has no ``train_handlers_id``).
        """
        protocol = self.spec.protocols[cell.protocol]
        values, overrides = self._base(cell_dir, cell.seed, self.num_epochs, self.num_steps)
        values[cell.budget.kind] = cell.budget.value
        if not protocol.label_free:  # a label-free protocol reads no label: there is no budget to set
            overrides.update(fill(self.spec.label_budget[cell.budget.kind], values, "study.json label_budget"))
        overrides.update(fill(protocol.overrides, values, f"study.json protocols.{protocol.name}"))
        if protocol.pretrained:
            if encoder is None:
                raise ValueError(f"protocol {protocol.name} needs the pre-trained encoder")
            overrides[self.spec.pretrain.encoder_key] = str(encoder)  # type: ignore[union-attr]
        counter = TrainingStepCounter()
        if self.spec.train_handlers_id:
            overrides[f"{self.spec.train_handlers_id}#{STEP_COUNTER_NAME}"] = counter
        overrides.update(self.overrides)
        workflow = run_bundle(protocol.config_file, overrides)
        n_labeled = 0 if protocol.label_free else None
        count_id = self.spec.labeled_count_id
        if not protocol.label_free and count_id and count_id in workflow.parser:
            n_labeled = len(workflow.parser.get_parsed_content(count_id))
        del workflow
        _release()

        values["model_file"] = fill(protocol.model_file, values, f"study.json protocols.{protocol.name}.model_file")
        if not Path(values["model_file"]).is_file():
            raise FileNotFoundError(f"{protocol.name} finished but wrote no model at {values['model_file']}")
        _, overrides = self._base(cell_dir, None, None)
        overrides.update(fill(self.spec.evaluate.overrides, values, "study.json evaluate"))
        overrides.update(fill(protocol.evaluate_overrides, values, f"study.json protocols.{protocol.name}.evaluate_overrides"))
        overrides.update(self.overrides)
        run_bundle(self.spec.evaluate.config_file, overrides)
        _release()
        metrics_file = fill(self.spec.evaluate.metrics_file, values, "study.json evaluate.metrics_file")
        metrics = read_metrics(metrics_file, self.spec.metrics)
        return {"metrics": metrics, "n_labeled": n_labeled, "steps": counter.steps}
