"""The study loop: pre-train (once per seed, or once with shared pre-training; and once per method when
methods are compared), run every unfinished cell, keep the reports up to date.

The loop is generic: it sees a runner with ``pretrain(run_dir, seed, resume[, method]) -> encoder file``,
``run_cell(cell, cell_dir, encoder) -> {"metrics": ..., "n_labeled": ..., "steps": ...}`` and ``skip_errors``
(:class:`~.runner.BundleRunner` for a MONAI bundle, a fake one in tests), and writes under
``output_dir``:

- ``study_settings.json``: the settings every cell shares (dataset, run length, overrides, and
  ``shared_pretraining``); a later invocation with other values stops with an error instead of
  mixing incomparable cells;
- ``pretrain/seed_<s>/`` per seed (the default: each seed pre-trains its own encoder, so the
  confidence intervals over seeds cover pre-training too), or one ``pretrain/`` with shared
  pre-training (seed 0; the intervals then cover fine-tuning only); when the plan compares
  pre-training methods (:attr:`StudyPlan.methods`), ``pretrain/<method>/seed_<s>/`` (shared:
  ``pretrain/<method>/``) for each method a chosen protocol uses (:mod:`~.pretrain_folders`); and
  ``cells/<protocol>/<budget>/seed_<s>/``, each with a ``cell.json`` once finished;
- ``results.csv`` and ``results.md`` (rewritten atomically after every cell) and ``results.png``
  (at the end, also when interrupted).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from monai_ssl.utils import atomic_write_text

from .grid import RESULT_FILE, Budget, Cell, build_grid, is_finished, read_result, reset_dir, write_result
from .plot import save_study_plot
from .pretrain_folders import (
    PER_METHOD_KEY,
    finish_moves,
    move_into_method_folder,
    pretrain_dir,
    pretraining_mode,
    pretraining_name,
)
from .runner import skip_reason
from .summary import interval_scope, write_csv, write_markdown

__all__ = ["CellRunner", "StudyPlan", "StudyRun", "run_study"]

logger = logging.getLogger("monai_ssl.study")

SETTINGS_FILE = "study_settings.json"
MODE_KEY = "shared_pretraining"
LEGACY_MODE_KEY = "pretrain_per_seed"  # how study folders made before shared_pretraining record the mode
SHARED_PRETRAIN_SEED = 0


class CellRunner(Protocol):
    """What the study loop needs from a runner."""

    skip_errors: Sequence[str]

    def pretrain(self, run_dir: Path, seed: int, resume: bool = False) -> Path: ...  # noqa: D102
    # a plan with ``methods`` calls ``pretrain(run_dir, seed, resume=..., method=...)``

    def run_cell(self, cell: Cell, cell_dir: Path, encoder: Path | None = None) -> dict[str, Any]: ...  # noqa: D102


@dataclass
class StudyPlan:
    """What to run.

    Args:
        protocols: protocol name -> whether it starts from the pre-trained encoder.
        budgets: label budgets (fractions or shots per class).
        seeds: seeds; each gives another labeled subset and initialisation.
        metrics: metric names, in the order of the reports (a table and a plot panel each).
        settings: what every cell shares (dataset, epochs, overrides), checked on resume.
        shared_pretraining: pre-train once (seed 0) and start every seed's cells from that encoder,
            instead of once per seed (the default). Faster by a factor of the number of seeds,
            but the intervals over seeds then cover fine-tuning only, and the reports say so.
        baseline: protocol the others are compared with, seed by seed (``None``: no comparison).
        title: heading of the Markdown report.
        descriptions: protocol name -> one line on what it does, listed under the tables.
        training_length: how the training length was set (epochs or optimizer steps), a paragraph of the
            Markdown report (:func:`~.training_length.describe_training_length`; ``""``: none).
        methods: pretrained protocol -> the pre-training method its encoder comes from; every pretrained
            protocol then needs one, and each (method, seed) pre-trains once, in ``pretrain/<method>/``.
            Empty (the default): one pre-training per seed for every pretrained protocol, in ``pretrain/``.
        default_method: the method of the pre-trainings a study folder holds from before it compared
            methods (its protocols named none then); they move to ``pretrain/<default_method>/`` and are
            reused (``None``: such a folder is refused when methods are compared).
        label_free: protocols that train on no label (study.json ``"label_free": true``, e.g. PiCIE):
            they run only at fraction 0, the others only at budgets above 0 (:func:`~.grid.build_grid`).
    """

    protocols: Mapping[str, bool]
    budgets: Sequence[Budget]
    seeds: Sequence[int]
    metrics: Sequence[str]
    settings: Mapping[str, Any] = field(default_factory=dict)
    shared_pretraining: bool = False
    baseline: str | None = None
    title: str = "Label-efficiency study"
    descriptions: Mapping[str, str] = field(default_factory=dict)
    training_length: str = ""
    methods: Mapping[str, str] = field(default_factory=dict)
    default_method: str | None = None
    label_free: Sequence[str] = ()


@dataclass
class StudyRun:
    """What a study invocation did: every cell's record, and the counts."""

    records: list[dict[str, Any]]
    ran: int
    reused: int
    failed: int
    paths: dict[str, Path]


def _recorded_mode(saved: Mapping[str, Any]) -> bool | None:
    """The ``shared_pretraining`` a settings file records (its legacy ``pretrain_per_seed`` inverted), if any."""
    if isinstance(saved.get(MODE_KEY), bool):
        return saved[MODE_KEY]
    if isinstance(saved.get(LEGACY_MODE_KEY), bool):
        return not saved[LEGACY_MODE_KEY]
    return None


def _mode_name(shared: bool) -> str:
    """The pre-training mode in words."""
    return ("shared pre-training (one pre-training, seed 0, for every seed)" if shared
            else "per-seed pre-training (each seed pre-trains its own encoder, the default)")


def _check_settings(output_dir: Path, settings: Mapping[str, Any], shared_pretraining: bool,
                    per_method: bool = False, default_method: str | None = None) -> None:
    """Record ``settings`` in a new study folder, or check that they match the recorded ones.

    Resume rule for the pre-training mode: a folder whose pre-training has started (``pretrain/``
    is not empty) continues only in the mode it was made in, as its ``study_settings.json`` records
    it (``shared_pretraining``, or the inverted ``pretrain_per_seed`` of a folder made before that
    key; the layout of ``pretrain/`` when neither is recorded). Another mode is refused with a
    one-line error naming both modes and the flag to add or drop, rather than continued in the
    recorded mode: mixing encoders of both modes would make the cells incomparable, and silently
    overriding the mode asked for would report intervals of another kind than the user expects.
    A study folder made by the old default (one shared ``pretrain/``) therefore needs
    ``--shared_pretraining`` to resume. A folder without any pre-training (a bundle without one,
    or only protocols that do not use it) takes the mode asked for, and the file is updated.

    Methods (``per_method``: pre-trainings in ``pretrain/<method>/``, recorded as
    ``pretrain_per_method``): they are not settings; a later run may add protocols of other methods,
    which pre-train in the folder's mode like the first ones. A folder pre-trained before methods
    were compared has its pre-trainings moved to ``pretrain/<default_method>/`` and reused (see
    :mod:`~.pretrain_folders`); one pre-trained per method is refused by a study that compares none.

    Raises:
        ValueError: the folder holds a study with other settings (the differing ones are named),
            one pre-trained in the other mode, one pre-trained per method for a plan without
            methods, or one pre-trained before methods for a plan with methods but no ``default_method``.
    """
    path = output_dir / SETTINGS_FILE
    settings = json.loads(json.dumps(dict(settings)))  # as they read back from JSON
    settings.pop(LEGACY_MODE_KEY, None)
    settings.pop(PER_METHOD_KEY, None)
    settings[MODE_KEY] = bool(shared_pretraining)
    if per_method:
        settings[PER_METHOD_KEY] = True
    finish_moves(output_dir, path)  # a move of pre-trainings that a killed run left halfway
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        mode_keys = (MODE_KEY, LEGACY_MODE_KEY, PER_METHOD_KEY)
        diff = [f"{k}: {saved.get(k)!r} there, {settings.get(k)!r} now" for k in sorted(set(saved) | set(settings))
                if k not in mode_keys and saved.get(k) != settings.get(k)]
        if diff:
            raise ValueError(
                f"output_dir {output_dir} holds a study run with other settings ({'; '.join(diff)}); its cells "
                "would not be comparable. Use another --output_dir, or delete that folder to start over."
            )
        there_per_method = saved.get(PER_METHOD_KEY) is True
        layout = pretraining_mode(output_dir, there_per_method)
        recorded = _recorded_mode(saved)
        there = recorded if recorded is not None else layout
        if layout is not None and there is not None and there != shared_pretraining:
            flag = ("add --shared_pretraining (shared_pretraining=True in Python)" if there
                    else "drop --shared_pretraining (shared_pretraining=False)")
            asked = "shared" if shared_pretraining else "per-seed"
            raise ValueError(
                f"output_dir {output_dir} holds a study made with {_mode_name(there)}; this run asks for "
                f"{_mode_name(shared_pretraining)}. Mixing the two would make its cells incomparable: to continue "
                f"it, {flag}; for {asked} pre-training, use another --output_dir."
            )
        if layout is not None and there_per_method and not per_method:
            raise ValueError(
                f"output_dir {output_dir} holds pre-trainings of several methods (pretrain/<method>/), but this "
                "study compares no methods (its study.json has no pretrain.method_key); use the study.json that "
                "made the folder, or another --output_dir."
            )
        if layout is not None and per_method and not there_per_method:
            if default_method is None:
                raise ValueError(
                    f"output_dir {output_dir} holds pre-trainings made before its study compared methods, and the "
                    "study.json names no pretrain.default_method to say which method made them; add it (e.g. "
                    "\"default_method\": \"byol\"), or use another --output_dir."
                )
            move_into_method_folder(output_dir, default_method, path)
        if saved == settings:
            return
        if recorded is not None and recorded != shared_pretraining:
            logger.info("study %s: no pre-training ran there yet; it continues with %s", output_dir,
                        _mode_name(shared_pretraining))
    atomic_write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", path)


@contextlib.contextmanager
def _logs_above_bar(bar: Any) -> Iterator[None]:
    """Send the package's console log lines through ``tqdm.write`` while ``bar`` is shown."""

    class _Stream:
        def write(self, text: str) -> None:
            if text.strip():
                bar.write(text.rstrip("\n"), file=sys.stderr)

        def flush(self) -> None:
            pass

    handlers = [h for h in logging.getLogger("monai_ssl").handlers
                if getattr(h, "_monai_ssl", False) and isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(_Stream()) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)


@contextlib.contextmanager
def _finally(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` when the block ends, also on an error or Ctrl-C (whose exception goes on)."""
    try:
        yield
    finally:
        action()


def _record(cell: Cell, result: Mapping[str, Any] | None, cell_dir: Path, output_dir: Path,
            pretrain_seed: int | None = None) -> dict[str, Any]:
    """One CSV/report row of ``cell`` from its saved result (``None``: not run yet).

    ``pretrain_seed`` is the seed of the pre-training whose encoder the cell starts from (``None``:
    its protocol does not use one).
    """
    result = result or {}
    return {
        "protocol": cell.protocol,
        "budget": cell.budget,
        "seed": cell.seed,
        "pretrain_seed": pretrain_seed,
        "n_labeled": result.get("n_labeled"),
        "steps": result.get("steps"),
        "metrics": dict(result.get("metrics") or {}),
        "seconds": result.get("seconds"),
        "status": result.get("status", "not run"),
        "cell_dir": str(cell_dir.relative_to(output_dir)),
    }


def _describe(record: Mapping[str, Any], metrics: Sequence[str]) -> str:
    numbers = ", ".join(
        f"{m}={record['metrics'][m]:.4f}" for m in metrics if record["metrics"].get(m) is not None
    )
    extra = f", n_labeled={record['n_labeled']}" if record.get("n_labeled") is not None else ""
    extra += f", {record['steps']} optimizer steps" if record.get("steps") is not None else ""
    return f"{numbers or 'no metrics'}{extra}, {record['seconds']:.1f} s"


def run_study(runner: CellRunner, plan: StudyPlan, output_dir: str | Path) -> StudyRun:
    """Run every unfinished cell of ``plan`` and write the reports into ``output_dir``.

    By default every seed pre-trains its own encoder (``pretrain/seed_<s>/``), so the intervals over
    seeds cover pre-training and fine-tuning; with ``plan.shared_pretraining`` one pre-training
    (seed 0, ``pretrain/``) serves every seed, and the reports say that the intervals cover
    fine-tuning only. A folder whose pre-training has started resumes only in its own mode (see
    :func:`_check_settings`). With ``plan.methods`` each (method, seed) that a chosen protocol needs
    pre-trains once (``runner.pretrain(..., method=m)``, in ``pretrain/<method>/seed_<s>/``, shared:
    ``pretrain/<method>/``), each protocol's cells start from their method's encoder, and the
    report's pre-training notes name the method.

    A cell whose label budget does not fit the data (a :class:`~monai_ssl.data.LabelBudgetError`,
    e.g. a fraction that leaves a class without labels, recognised by its type through MONAI's
    wrapping; or a ``ValueError`` starting with one of ``runner.skip_errors``) is recorded as
    ``skipped: <reason>`` and not retried. Any other error is logged with its traceback, recorded
    as ``failed: <error>`` and retried by the next invocation; the other cells still run.

    Raises:
        ValueError: ``output_dir`` holds a study with other settings, or one pre-trained in the
            other mode.
    """
    output_dir = Path(output_dir).resolve()
    per_method = _check_methods(plan)
    output_dir.mkdir(parents=True, exist_ok=True)
    shared = bool(plan.shared_pretraining)
    _check_settings(output_dir, plan.settings, shared, per_method, plan.default_method)
    unknown = [p for p in plan.label_free if p not in plan.protocols]
    if unknown:
        raise ValueError(f"StudyPlan.label_free names protocol(s) {unknown} that are not chosen: {list(plan.protocols)}")
    cells = build_grid(list(plan.protocols), plan.budgets, plan.seeds, plan.label_free)
    method_order = {m: i for i, m in enumerate(dict.fromkeys(plan.methods.get(p) for p in plan.protocols))}

    def pretrain_key(cell: Cell) -> tuple[str | None, int] | None:
        """The (method, seed) of the pre-training ``cell`` starts from (``None``: its protocol uses none)."""
        if not plan.protocols[cell.protocol]:
            return None
        return plan.methods.get(cell.protocol), SHARED_PRETRAIN_SEED if shared else cell.seed

    def pretrain_seed(cell: Cell) -> int | None:
        """The seed of the pre-training ``cell`` starts from (``None``: its protocol uses none)."""
        key = pretrain_key(cell)
        return None if key is None else key[1]

    pretrain_keys = sorted({k for k in map(pretrain_key, cells) if k is not None},
                           key=lambda k: (method_order[k[0]], k[1]))
    encoders: dict[tuple[str | None, int], Path | None] = {}
    records: dict[Cell, dict[str, Any]] = {}
    paths = {"csv": output_dir / "results.csv", "markdown": output_dir / "results.md",
             "plot": output_dir / "results.png"}

    def folder(key: tuple[str | None, int]) -> Path:
        return pretrain_dir(output_dir, key[0], key[1], shared)

    todo = [c for c in cells if not is_finished(read_result(output_dir / c.relative_dir))]
    pretrain_todo = [k for k in pretrain_keys if not is_finished(read_result(folder(k)))
                     and any(pretrain_key(c) == k for c in todo)]
    for cell in cells:
        records[cell] = _record(cell, read_result(output_dir / cell.relative_dir), output_dir / cell.relative_dir,
                                output_dir, pretrain_seed(cell))
    reused = len(cells) - len(todo)
    if reused:
        logger.info("study %s: %d of %d cells already finished, reused", output_dir, reused, len(cells))

    def write_reports(plot: bool = False) -> None:
        rows = [records[c] for c in cells]
        notes = []
        for key in pretrain_keys:
            saved = read_result(folder(key)) or {}
            if saved.get("status"):
                notes.append(f"Pre-training ({pretraining_name(*key)}): {saved['status']}, "
                             f"{saved.get('seconds', 0):.0f} s.")
        write_csv(rows, plan.metrics, paths["csv"])
        write_markdown(rows, plan, paths["markdown"], notes=notes)
        if plot:
            save_study_plot(rows, plan.metrics, paths["plot"], title=plan.title, caption=interval_scope(plan),
                            label_free=plan.label_free)

    ran = failed = 0
    bar = tqdm(total=len(pretrain_todo) + len(todo), desc="study", unit="cell", dynamic_ncols=True)
    with bar, _logs_above_bar(bar), _finally(lambda: write_reports(plot=True)):
        for cell in todo:
            key = pretrain_key(cell)
            if key is not None and key not in encoders:
                encoders[key] = _pretrain(runner, folder(key), key[1], bar, key[0])
            cell_dir = output_dir / cell.relative_dir
            bar.set_description(f"study: {cell}")
            reset_dir(cell_dir, output_dir)
            needs_encoder = key is not None
            encoder = encoders.get(key) if key is not None else None
            result = _run_cell(runner, cell, cell_dir, encoder, needs_encoder)
            write_result(cell_dir, result)
            records[cell] = _record(cell, result, cell_dir, output_dir, pretrain_seed(cell))
            ran += 1
            if result["status"] == "ok":
                logger.info("cell %s: ok, %s", cell, _describe(records[cell], plan.metrics))
            elif result["status"].startswith("skipped"):
                logger.warning("cell %s: %s", cell, result["status"])
            else:
                failed += 1
                logger.error("cell %s: %s", cell, result["status"])
            write_reports()  # the tables after every cell, the plot at the end (also when interrupted)
            bar.update(1)
    done = sum(1 for r in records.values() if r["status"] == "ok")
    logger.info("study %s: %d cells ok, %d run now, %d reused, %d failed -> %s, %s, %s", output_dir, done, ran,
                reused, failed, paths["csv"], paths["markdown"], paths["plot"])
    return StudyRun(records=[records[c] for c in cells], ran=ran, reused=reused, failed=failed, paths=paths)


def _run_cell(runner: CellRunner, cell: Cell, cell_dir: Path, encoder: Path | None, needs_encoder: bool) -> dict:
    """Run one cell and return its result: ``ok`` with the numbers, ``skipped: <reason>`` or ``failed: <error>``."""
    start = time.perf_counter()
    if needs_encoder and encoder is None:
        result: dict[str, Any] = {"status": "failed: the pre-training it needs failed (see the log)"}
    else:
        try:
            result = {"status": "ok", **runner.run_cell(cell, cell_dir, encoder)}
        except Exception as err:  # one bad cell must not stop the study
            reason = skip_reason(err, getattr(runner, "skip_errors", ()))
            if reason is None:
                logger.exception("cell %s failed", cell)
            result = {"status": f"skipped: {reason}" if reason else f"failed: {type(err).__name__}: {err}"}
    result.update(protocol=cell.protocol, budget=cell.budget.value, budget_kind=cell.budget.kind, seed=cell.seed,
                  seconds=round(time.perf_counter() - start, 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return result


def _check_methods(plan: StudyPlan) -> bool:
    """Whether ``plan`` compares pre-training methods; each pretrained protocol then names its method.

    Raises:
        ValueError: ``plan.methods`` leaves out a pretrained protocol or names another one.
    """
    if not plan.methods:
        return False
    missing = [p for p, pretrained in plan.protocols.items() if pretrained and p not in plan.methods]
    other = [p for p in plan.methods if not plan.protocols.get(p)]
    if missing or other:
        raise ValueError(f"StudyPlan.methods must give the method of every pretrained protocol and of no other; "
                         f"without one: {missing}, not pretrained or not chosen: {other}")
    return True


def _pretrain(runner: CellRunner, run_dir: Path, seed: int, bar: Any, method: str | None = None) -> Path | None:
    """The encoder of pre-training ``seed`` (of ``method``, when methods are compared): reused when finished,
    else (re)trained; ``None`` if it fails.

    A pre-training killed halfway is continued (``resume=True``) from what its folder holds.
    """
    saved = read_result(run_dir)
    if is_finished(saved) and (run_dir / saved["encoder"]).is_file():  # type: ignore[index]
        return run_dir / saved["encoder"]  # type: ignore[index]
    name = pretraining_name(method, seed)
    bar.set_description(f"study: pre-training {name}")
    resume = run_dir.is_dir() and any(p.name != RESULT_FILE for p in run_dir.iterdir())
    if resume:
        logger.info("pre-training (%s) did not finish before: continuing it in %s", name, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result: dict[str, Any] = {"seed": seed} if method is None else {"method": method, "seed": seed}
    try:
        extra = {} if method is None else {"method": method}  # runners of studies without methods take none
        encoder: Path | None = Path(runner.pretrain(run_dir, seed, resume=resume, **extra)).resolve()
        result.update(status="ok", encoder=os.path.relpath(encoder, run_dir.resolve()))
        logger.info("pre-training (%s): ok, %.1f s -> %s", name, time.perf_counter() - start, encoder)
    except Exception as err:  # the cells that do not need it still run
        logger.exception("pre-training (%s) failed; the cells that need it are marked failed", name)
        encoder = None
        result.update(status=f"failed: {type(err).__name__}: {err}")
    result.update(seconds=round(time.perf_counter() - start, 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_result(run_dir, result)
    bar.update(1)
    return encoder
