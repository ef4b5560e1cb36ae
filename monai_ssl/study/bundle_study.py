"""Run a bundle's label-efficiency study from Python: the function behind ``python -m monai_ssl.study``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .engine import StudyPlan, StudyRun, run_study
from .grid import Budget, check_protocols, parse_fractions, parse_seeds, parse_shots
from .runner import BundleRunner
from .spec import StudySpec, load_study_spec
from .training_length import configs_without_key, describe_training_length

__all__ = ["bundle_study", "check_label_free", "parse_overrides"]

logger = logging.getLogger("monai_ssl.study")


def parse_overrides(items: Iterable[str | Mapping[str, Any]] | None, setting: str = "--override") -> dict[str, Any]:
    """Bundle overrides from ``key=value`` strings or JSON objects, later ones winning.

    A value is read as JSON when it parses (``64`` -> int, ``true`` -> bool, ``null`` -> None,
    ``[1, 2]`` -> list) and kept as text otherwise (``device=cuda:1``).

    Raises:
        ValueError: an item is neither ``key=value`` nor a JSON object (the item is named).
    """
    result: dict[str, Any] = {}
    for item in items or ():
        if isinstance(item, Mapping):
            result.update(item)
            continue
        text = str(item).strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{setting} {text!r}: not a valid JSON object ({err})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{setting} {text!r}: expected a JSON object")
            result.update(value)
            continue
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{setting} {text!r}: expected key=value (e.g. image_size=64) or a JSON object")
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw
    return result


def check_label_free(spec: StudySpec, chosen: Sequence[str], budgets: Sequence[Budget],
                     setting: str = "fractions") -> list[str]:
    """The chosen label-free protocols, checked against the budgets (the study's 0 % column).

    A label-free protocol (study.json ``"label_free": true``, e.g. PiCIE) runs only at fraction 0,
    every other protocol only above 0 (:func:`~.grid.build_grid`). Chosen label-free protocols
    without a 0 among the budgets run no cell: one info line says so.

    Raises:
        ValueError: fraction 0 among the budgets but no chosen protocol is label-free, or every
            chosen protocol is label-free and there is no 0 among the budgets (``--fractions 0``).
    """
    free = [p for p in chosen if spec.protocols[p].label_free]
    zero = any(b.no_labels for b in budgets)
    if zero and not free:
        raise ValueError(f"{setting}: fraction 0 (no labels) is the column of a label-free protocol (study.json "
                         f"\"label_free\": true), and none of the chosen protocols {list(chosen)} is one; drop 0 "
                         "or choose a label-free protocol")
    if free and not zero:
        if len(free) == len(chosen):
            raise ValueError(f"{setting}: the chosen protocol(s) {free} are label-free and run only at fraction 0 "
                             "(no labels): add it, e.g. --fractions 0")
        logger.info("label-free protocol(s) %s run only at fraction 0 (no labels), which is not among the budgets "
                    "(%s): they run no cell", ", ".join(free), ", ".join(b.label for b in budgets))
    others = [p for p in chosen if p not in free]
    if zero and others and all(b.no_labels for b in budgets):
        logger.info("protocol(s) %s need labels and run only at budgets above 0, and the only budget is 0: they "
                    "run no cell", ", ".join(others))
    return free


def bundle_study(
    bundle: str | Path,
    output_dir: str | Path,
    dataset_dir: str | Path | None = None,
    fractions: str | Sequence[float] | None = None,
    shots: str | Sequence[int] | None = None,
    seeds: str | Sequence[int] | None = None,
    protocols: str | Sequence[str] | None = None,
    num_epochs: int | None = None,
    pretrain_epochs: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    metrics: str | Sequence[str] | None = None,
    shared_pretraining: bool = False,
    study_file: str = "configs/study.json",
    num_steps: int | None = None,
) -> StudyRun:
    """Run (or continue) the study of ``bundle`` into ``output_dir``; see :mod:`monai_ssl.study`.

    Args:
        bundle: the bundle folder (holding ``configs/study.json``).
        output_dir: where the cells and the reports go; rerun with the same folder to continue.
        dataset_dir: the dataset for every run (``None``: the bundle's default, e.g. its demo).
        fractions: label fractions in [0, 1] (default: study.json's ``default_fractions``, else
            ``0.1,0.5,1.0``, when ``shots`` is not given); 0 (no labels) is the column of the chosen
            label-free protocols (study.json ``"label_free": true``, e.g. PiCIE), which run only there,
            while the others run only at the fractions above 0.
        shots: labeled images per class, instead of fractions.
        seeds: one labeled subset and initialisation per seed (default: study.json's ``default_seeds``,
            else ``0,1,2``).
        protocols: protocol names of the bundle's study.json (default: its ``default_protocols``, else all).
            With a study.json that compares pre-training methods (``pretrain.method_key``), each
            pretrained protocol names its method (e.g. ``dino_finetune``), and each (method, seed) the
            chosen protocols need pre-trains once.
        num_epochs: run length of every training, in epochs (``None``: the bundle's default).
        pretrain_epochs: run length of the pre-training (``None``: ``num_epochs``).
        overrides: more settings for every config of every run (e.g. ``{"image_size": 64}``).
        metrics: metric names of study.json to report (default: all; the first is the main one).
        shared_pretraining: pre-train once (seed 0) and start every seed's cells from that encoder,
            instead of once per seed (the default, which costs seeds x one pre-training). Faster,
            but the confidence intervals then cover fine-tuning only; the reports say so.
        study_file: the study description inside the bundle.
        num_steps: run length of every training in optimizer steps, instead of ``num_epochs``, so that every
            label budget trains equally long (:mod:`~monai_ssl.study.training_length`); pre-training keeps
            ``pretrain_epochs``. Every chosen protocol's configs must declare the spec's ``steps_key``.

    Raises:
        ValueError: a bad setting (named in the message), fraction 0 without a chosen label-free
            protocol or only label-free protocols without it (:func:`check_label_free`), both
            ``num_epochs`` and ``num_steps``, a
            protocol whose configs cannot take ``num_steps``, ``output_dir`` holding a study with
            other settings, or one whose pre-training ran in the other mode (a folder made by the
            former default, one shared pre-training, resumes only with ``shared_pretraining=True``;
            see :func:`~monai_ssl.study.engine.run_study`).
    """
    spec = load_study_spec(bundle, study_file)
    if fractions is not None and shots is not None:
        raise ValueError("fractions and shots: give one of them, not both")
    if protocols is None:
        protocols = list(spec.default_protocols or spec.protocols)
    chosen = check_protocols(protocols, list(spec.protocols))
    if shots is not None:
        if "shots" not in spec.label_budget:
            raise ValueError(f"shots: the bundle's study.json has no label_budget 'shots' ({spec.bundle_dir})")
        budgets = parse_shots(shots)
    else:
        setting = "fractions" if fractions is not None else f"{spec.bundle_dir} study.json default_fractions"
        if "fraction" not in spec.label_budget:
            raise ValueError(f"fractions: the bundle's study.json has no label_budget 'fraction' ({spec.bundle_dir})")
        budgets = parse_fractions((spec.default_fractions or "0.1,0.5,1.0") if fractions is None else fractions,
                                  setting, allow_zero=True)
    label_free = check_label_free(spec, chosen, budgets, "shots" if shots is not None else setting)
    seed_list = parse_seeds((spec.default_seeds or "0,1,2") if seeds is None else seeds)
    metric_names = list(spec.metrics)
    if metrics is not None:
        metric_names = check_protocols(metrics, metric_names, "metrics", "metric")
    for name, value in (("num_epochs", num_epochs), ("num_steps", num_steps), ("pretrain_epochs", pretrain_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    if num_epochs is not None and num_steps is not None:
        raise ValueError(f"num_epochs ({num_epochs}) and num_steps ({num_steps}) both set the training length: give "
                         "one of them (num_steps trains every label budget equally long)")
    if num_steps is not None:
        missing = configs_without_key({p: spec.protocols[p].config_file for p in chosen}, spec.steps_key)
        if missing:
            raise ValueError(
                f"num_steps: the configs of protocol(s) {'; '.join(missing)} have no {spec.steps_key!r} setting, so "
                "they cannot train a fixed number of optimizer steps; use --num_epochs"
            )
    dataset = None if dataset_dir is None else Path(dataset_dir).expanduser().resolve()
    if dataset is not None and not dataset.exists():
        raise ValueError(f"dataset_dir: {dataset} does not exist")
    overrides = dict(overrides or {})
    runner = BundleRunner(spec, dataset, num_epochs, pretrain_epochs, overrides, num_steps=num_steps)
    settings = {
        "bundle": str(spec.bundle_dir),
        "dataset_dir": None if dataset is None else str(dataset),
        "num_epochs": num_epochs,
        "num_steps": num_steps,
        "pretrain_epochs": runner.pretrain_epochs,
        "shared_pretraining": bool(shared_pretraining),
        "overrides": overrides,
    }
    plan = StudyPlan(
        protocols={p: spec.protocols[p].pretrained for p in chosen},
        budgets=budgets,
        seeds=seed_list,
        metrics=metric_names,
        settings=settings,
        shared_pretraining=bool(shared_pretraining),
        baseline=spec.baseline,
        title=f"Label-efficiency study: {spec.name}",
        descriptions={p: spec.protocols[p].description for p in chosen if spec.protocols[p].description},
        training_length=describe_training_length(num_epochs, num_steps, runner.pretrain_epochs,
                                                 any(spec.protocols[p].pretrained for p in chosen)),
        methods={p: spec.protocols[p].method for p in chosen
                 if spec.protocols[p].pretrained and spec.protocols[p].method is not None},
        default_method=None if spec.pretrain is None else spec.pretrain.default_method,
        label_free=label_free,
    )
    logger.info(
        "study of %s: %d protocol(s) x %d budget(s) x %d seed(s); the bundle's configs run in this process "
        "(MONAI evaluates their expressions: run bundles you trust)",
        spec.bundle_dir, len(chosen), len(budgets), len(seed_list),
    )
    methods = list(dict.fromkeys(plan.methods.values()))
    per = f" per method ({', '.join(methods)})" if methods else ""
    if any(plan.protocols.values()):
        if shared_pretraining:
            logger.info("pre-training once%s (seed 0), shared by every seed: the intervals cover fine-tuning only",
                        per)
        else:
            logger.info("pre-training once per seed%s (%d pre-trainings; --shared_pretraining runs %d): the "
                        "intervals cover pre-training and fine-tuning", per, len(seed_list) * max(1, len(methods)),
                        max(1, len(methods)))
    return run_study(runner, plan, output_dir)
