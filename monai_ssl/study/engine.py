"""The study loop: pre-train once, run every unfinished cell, keep the reports up to date.

The loop is generic: it sees a runner with ``pretrain(run_dir, seed, resume) -> encoder file``,
``run_cell(cell, cell_dir, encoder) -> {"metrics": ..., "n_labeled": ...}`` and ``skip_errors``
(:class:`~.runner.BundleRunner` for a MONAI bundle, a fake one in tests), and writes under
``output_dir``:

- ``study_settings.json``: the settings every cell shares (dataset, run length, overrides); a
  later invocation with other values stops with an error instead of mixing incomparable cells;
- ``pretrain/`` (or ``pretrain/seed_<s>/`` per seed) and ``cells/<protocol>/<budget>/seed_<s>/``,
  each with a ``cell.json`` once finished;
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
from .runner import skip_reason
from .summary import write_csv, write_markdown

__all__ = ["CellRunner", "StudyPlan", "StudyRun", "run_study"]

logger = logging.getLogger("monai_ssl.study")

SETTINGS_FILE = "study_settings.json"


class CellRunner(Protocol):
    """What the study loop needs from a runner."""

    skip_errors: Sequence[str]

    def pretrain(self, run_dir: Path, seed: int, resume: bool = False) -> Path: ...  # noqa: D102

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
        pretrain_per_seed: pre-train once per seed instead of once per study.
        baseline: protocol the others are compared with, seed by seed (``None``: no comparison).
        title: heading of the Markdown report.
        descriptions: protocol name -> one line on what it does, listed under the tables.
    """

    protocols: Mapping[str, bool]
    budgets: Sequence[Budget]
    seeds: Sequence[int]
    metrics: Sequence[str]
    settings: Mapping[str, Any] = field(default_factory=dict)
    pretrain_per_seed: bool = False
    baseline: str | None = None
    title: str = "Label-efficiency study"
    descriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StudyRun:
    """What a study invocation did: every cell's record, and the counts."""

    records: list[dict[str, Any]]
    ran: int
    reused: int
    failed: int
    paths: dict[str, Path]


def _check_settings(output_dir: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in a new study folder, or check that they match the recorded ones.

    Raises:
        ValueError: the folder holds a study with other settings (the differing ones are named).
    """
    path = output_dir / SETTINGS_FILE
    settings = json.loads(json.dumps(dict(settings)))  # as they read back from JSON
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        diff = [f"{k}: {saved.get(k)!r} there, {settings.get(k)!r} now" for k in sorted(set(saved) | set(settings))
                if saved.get(k) != settings.get(k)]
        if diff:
            raise ValueError(
                f"output_dir {output_dir} holds a study run with other settings ({'; '.join(diff)}); its cells "
                "would not be comparable. Use another --output_dir, or delete that folder to start over."
            )
        return
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


def _record(cell: Cell, result: Mapping[str, Any] | None, cell_dir: Path, output_dir: Path) -> dict[str, Any]:
    """One CSV/report row of ``cell`` from its saved result (``None``: not run yet)."""
    result = result or {}
    return {
        "protocol": cell.protocol,
        "budget": cell.budget,
        "seed": cell.seed,
        "n_labeled": result.get("n_labeled"),
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
    return f"{numbers or 'no metrics'}{extra}, {record['seconds']:.1f} s"


def run_study(runner: CellRunner, plan: StudyPlan, output_dir: str | Path) -> StudyRun:
    """Run every unfinished cell of ``plan`` and write the reports into ``output_dir``.

    A cell whose label budget does not fit the data (a ``ValueError`` starting with one of
    ``runner.skip_errors``, e.g. a fraction that leaves a class without labels) is recorded as
    ``skipped: <reason>`` and not retried. Any other error is logged with its traceback, recorded
    as ``failed: <error>`` and retried by the next invocation; the other cells still run.

    Raises:
        ValueError: ``output_dir`` holds a study with other settings.
    """
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(output_dir, plan.settings)
    cells = build_grid(list(plan.protocols), plan.budgets, plan.seeds)
    pretrained_seeds = sorted({c.seed for c in cells if plan.protocols[c.protocol]})
    if plan.pretrain_per_seed or not pretrained_seeds:
        pretrain_seeds = pretrained_seeds
    else:  # once per study, with seed 0
        pretrain_seeds = [0]
    encoders: dict[int, Path | None] = {}
    records: dict[Cell, dict[str, Any]] = {}
    paths = {"csv": output_dir / "results.csv", "markdown": output_dir / "results.md",
             "plot": output_dir / "results.png"}

    def pretrain_dir(seed: int) -> Path:
        return output_dir / "pretrain" / (f"seed_{seed}" if plan.pretrain_per_seed else "")

    todo = [c for c in cells if not is_finished(read_result(output_dir / c.relative_dir))]
    pretrain_todo = [s for s in pretrain_seeds if not is_finished(read_result(pretrain_dir(s)))
                     and any(plan.protocols[c.protocol] and (not plan.pretrain_per_seed or c.seed == s) for c in todo)]
    for cell in cells:
        records[cell] = _record(cell, read_result(output_dir / cell.relative_dir), output_dir / cell.relative_dir,
                                output_dir)
    reused = len(cells) - len(todo)
    if reused:
        logger.info("study %s: %d of %d cells already finished, reused", output_dir, reused, len(cells))

    def write_reports(plot: bool = False) -> None:
        rows = [records[c] for c in cells]
        notes = []
        for s in pretrain_seeds:
            saved = read_result(pretrain_dir(s)) or {}
            if saved.get("status"):
                notes.append(f"Pre-training (seed {s}): {saved['status']}, {saved.get('seconds', 0):.0f} s.")
        write_csv(rows, plan.metrics, paths["csv"])
        write_markdown(rows, plan, paths["markdown"], notes=notes)
        if plot:
            save_study_plot(rows, plan.metrics, paths["plot"], title=plan.title)

    ran = failed = 0
    bar = tqdm(total=len(pretrain_todo) + len(todo), desc="study", unit="cell", dynamic_ncols=True)
    with bar, _logs_above_bar(bar), _finally(lambda: write_reports(plot=True)):
        for cell in todo:
            seed = cell.seed if plan.pretrain_per_seed else 0
            if plan.protocols[cell.protocol] and seed not in encoders:
                encoders[seed] = _pretrain(runner, pretrain_dir(seed), seed, bar)
            cell_dir = output_dir / cell.relative_dir
            bar.set_description(f"study: {cell}")
            reset_dir(cell_dir, output_dir)
            needs_encoder = plan.protocols[cell.protocol]
            result = _run_cell(runner, cell, cell_dir, encoders.get(seed) if needs_encoder else None, needs_encoder)
            write_result(cell_dir, result)
            records[cell] = _record(cell, result, cell_dir, output_dir)
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
            reason = skip_reason(err, runner.skip_errors)
            if reason is None:
                logger.exception("cell %s failed", cell)
            result = {"status": f"skipped: {reason}" if reason else f"failed: {type(err).__name__}: {err}"}
    result.update(protocol=cell.protocol, budget=cell.budget.value, budget_kind=cell.budget.kind, seed=cell.seed,
                  seconds=round(time.perf_counter() - start, 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return result


def _pretrain(runner: CellRunner, run_dir: Path, seed: int, bar: Any) -> Path | None:
    """The encoder of pre-training ``seed``: reused when finished, else (re)trained; ``None`` if it fails.

    A pre-training killed halfway is continued (``resume=True``) from what its folder holds.
    """
    saved = read_result(run_dir)
    if is_finished(saved) and (run_dir / saved["encoder"]).is_file():  # type: ignore[index]
        return run_dir / saved["encoder"]  # type: ignore[index]
    bar.set_description(f"study: pre-training seed={seed}")
    resume = run_dir.is_dir() and any(p.name != RESULT_FILE for p in run_dir.iterdir())
    if resume:
        logger.info("pre-training (seed %d) did not finish before: continuing it in %s", seed, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result: dict[str, Any] = {"seed": seed}
    try:
        encoder: Path | None = Path(runner.pretrain(run_dir, seed, resume=resume)).resolve()
        result.update(status="ok", encoder=os.path.relpath(encoder, run_dir.resolve()))
        logger.info("pre-training (seed %d): ok, %.1f s -> %s", seed, time.perf_counter() - start, encoder)
    except Exception as err:  # the cells that do not need it still run
        logger.exception("pre-training (seed %d) failed; the cells that need it are marked failed", seed)
        encoder = None
        result.update(status=f"failed: {type(err).__name__}: {err}")
    result.update(seconds=round(time.perf_counter() - start, 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_result(run_dir, result)
    bar.update(1)
    return encoder
