"""A study's results as a CSV of every cell and a Markdown report of means with 95 % confidence intervals.

A row (record) of the study is a dict with ``protocol``, ``budget`` (a :class:`~.grid.Budget`),
``seed``, ``n_labeled``, ``metrics`` (name -> value or ``None``), ``seconds``, ``status`` (``ok``,
``skipped: <reason>``, ``failed: <error>`` or ``not run``), ``cell_dir`` and optionally
``pretrain_seed`` (the seed of the pre-training whose encoder the cell starts from, ``None`` for a
protocol without one) and ``steps`` (the optimizer steps its training took, ``None`` when not counted).

What the intervals cover depends on the pre-training mode (:func:`interval_scope`): with one
pre-training per seed (the default) the seeds vary pre-training and fine-tuning; with shared
pre-training (seed 0 for every seed) they vary fine-tuning only. The Markdown report, the figure's
caption and the CSV's ``pretrain_seed`` column say which.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai_ssl.utils import atomic_write_text

from .grid import Budget
from .stats import mean_ci95

if TYPE_CHECKING:
    from .engine import StudyPlan

__all__ = ["interval_scope", "markdown_report", "paired_differences", "summarize", "write_csv", "write_markdown"]

Stat = tuple[float, "float | None", int]


def interval_scope(plan: StudyPlan) -> str:
    """What the study's confidence intervals over seeds cover, in words ("" without pre-training).

    Returns:
        ``"intervals cover fine-tuning seeds only; pre-training ran once (seed 0)"`` with shared
        pre-training, ``"intervals cover pre-training and fine-tuning (each seed pre-trained its own
        encoder)"`` with one pre-training per seed, ``""`` when no protocol of ``plan`` starts from
        a pre-trained encoder.
    """
    if not any(plan.protocols.values()):
        return ""
    if plan.shared_pretraining:
        return "intervals cover fine-tuning seeds only; pre-training ran once (seed 0)"
    return "intervals cover pre-training and fine-tuning (each seed pre-trained its own encoder)"


def _ordered(rows: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """The distinct values of ``key`` in the rows' order."""
    return list(dict.fromkeys(r[key] for r in rows))


def _value(row: Mapping[str, Any], metric: str) -> float | None:
    return row["metrics"].get(metric) if row["status"] == "ok" else None


def summarize(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[tuple[str, Budget], Stat]:
    """Mean, 95 % CI half-width and count of ``metric`` over the seeds of every (protocol, budget).

    Only finished cells (status ``ok``) with a value count; a pair with none is absent.
    """
    groups: dict[tuple[str, Budget], list[float]] = {}
    for row in rows:
        value = _value(row, metric)
        if value is not None:
            groups.setdefault((row["protocol"], row["budget"]), []).append(value)
    return {key: mean_ci95(values) for key, values in groups.items()}


def paired_differences(rows: Sequence[Mapping[str, Any]], metric: str, baseline: str) -> dict[tuple[str, Budget], Stat]:
    """Mean and 95 % CI of ``protocol - baseline`` per (protocol, budget), over the seeds both finished.

    The same seed gives both the same labeled images, so the difference per seed removes the
    luck of the draw that the two share; its interval is narrower than comparing two means.
    """
    by_cell = {(r["protocol"], r["budget"], r["seed"]): _value(r, metric) for r in rows}
    groups: dict[tuple[str, Budget], list[float]] = {}
    for (protocol, budget, seed), value in by_cell.items():
        base = by_cell.get((baseline, budget, seed))
        if protocol != baseline and value is not None and base is not None:
            groups.setdefault((protocol, budget), []).append(value - base)
    return {key: mean_ci95(values) for key, values in groups.items()}


def write_csv(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], path: str | Path) -> Path:
    """Write one line per cell: protocol, budget (``fraction`` or ``shots_per_class``), seed, pretrain_seed,
    n_labeled, steps, the metrics, seconds, status, cell_dir. Written atomically.

    ``steps`` (present when some cell counted them) are the optimizer steps the cell's training took.

    ``pretrain_seed`` (present when some cell starts from a pre-trained encoder) is the seed of the
    pre-training the cell's encoder came from: the cell's own seed with one pre-training per seed,
    0 for every seed with shared pre-training (the seeds then vary fine-tuning only), empty for a
    protocol without pre-training.
    """
    budget_columns = _ordered([{"c": r["budget"].column} for r in rows], "c") or ["fraction"]
    pretrain = ["pretrain_seed"] if any(r.get("pretrain_seed") is not None for r in rows) else []
    steps = ["steps"] if any(r.get("steps") is not None for r in rows) else []
    header = ["protocol", *budget_columns, "seed", *pretrain, "n_labeled", *steps, *metrics, "seconds", "status",
              "cell_dir"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        plain = ("protocol", "seed", *pretrain, "n_labeled", *steps, "seconds", "status", "cell_dir")
        line: dict[str, Any] = {k: row.get(k) for k in plain}
        line[row["budget"].column] = f"{row['budget'].value:g}"
        line.update({m: row["metrics"].get(m) for m in metrics})
        writer.writerow({k: "" if v is None else v for k, v in line.items()})
    return atomic_write_text(buf.getvalue(), path)


def _fmt(stat: Stat | None, signed: bool = False, why: str = "—") -> str:
    if stat is None:
        return why
    mean, half, n = stat
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return f"{text} (n={n})" if half is None else f"{text} ± {half:.3f} (n={n})"


def _header(rows: Sequence[Mapping[str, Any]], budget: Budget) -> str:
    """``10% (12 labels)``: the budget and the number of labeled training images it gave (``0% (0 labels)``)."""
    if budget.no_labels:
        return f"{budget.label} (0 labels)"
    counts = sorted({r["n_labeled"] for r in rows if r["budget"] == budget and r["n_labeled"] is not None})
    if not counts:
        return budget.label
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{budget.label} ({n} labels)"


def _missing(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, Budget], str]:
    """What an empty table entry shows: ``skipped``, ``failed`` or ``not run`` when all its cells are so."""
    kinds: dict[tuple[str, Budget], set[str]] = {}
    for r in rows:
        kinds.setdefault((r["protocol"], r["budget"]), set()).add(r["status"].split(":")[0])
    return {key: next(iter(k)) if len(k) == 1 else "—" for key, k in kinds.items()}


def _steps_trained(rows: Sequence[Mapping[str, Any]], budgets: Sequence[Budget]) -> str:
    """``Optimizer steps trained per cell: 10% 30,080; 100% 30,016–30,020.`` ("" when none was counted)."""
    parts = []
    for budget in budgets:
        counts = sorted({r["steps"] for r in rows if r["budget"] == budget and r["status"] == "ok"
                         and r.get("steps") is not None})
        if counts:
            n = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"
            parts.append(f"{budget.label} {n}")
    return f"Optimizer steps trained per cell: {'; '.join(parts)}." if parts else ""


def _table(stats: Mapping[tuple[str, Budget], Stat], protocols: Sequence[str], budgets: Sequence[Budget],
           headers: Sequence[str], missing: Mapping[tuple[str, Budget], str], signed: bool = False) -> list[str]:
    """A Markdown table; a (protocol, budget) without any cell reads ``n/a`` (not run by design, e.g. a
    label-free protocol above 0 %), unlike ``not run``, ``skipped`` or ``failed`` cells."""
    lines = ["| protocol | " + " | ".join(headers) + " |", "| --- |" + " ---: |" * len(budgets)]
    for p in protocols:
        entries = (_fmt(stats.get((p, b)), signed, missing.get((p, b), "n/a")) for b in budgets)
        lines.append(f"| {p} | " + " | ".join(entries) + " |")
    return lines


def _left_out(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per (budget, status) of the cells without a result, naming their protocols and seeds."""
    groups: dict[tuple[Budget, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["status"] != "ok":
            groups.setdefault((r["budget"], r["status"]), []).append(r)
    lines = []
    for (budget, status), members in groups.items():
        kind, _, reason = status.partition(": ")
        protocols, seeds = _ordered(members, "protocol"), _ordered(members, "seed")
        if len(members) > 1 and len(members) == len(protocols) * len(seeds):
            which = f"{', '.join(protocols)} x seed(s) {', '.join(map(str, seeds))}"
        else:
            which = ", ".join(f"{r['protocol']} seed {r['seed']}" for r in members)
        lines.append(f"- {budget}, **{kind}** ({len(members)} cell(s): {which})" + (f": {reason}" if reason else ""))
    return lines


def markdown_report(rows: Sequence[Mapping[str, Any]], plan: StudyPlan, notes: Sequence[str] = ()) -> str:
    """The report: per metric a table of means ± 95 % CI, the gain over the baseline, then the cells left out."""
    protocols, budgets = _ordered(rows, "protocol"), _ordered(rows, "budget")
    seeds = _ordered(rows, "seed")
    headers = [_header(rows, b) for b in budgets]
    missing = _missing(rows)
    scope = interval_scope(plan)
    if not scope:
        covers, agree = "", "an interval that excludes 0 is a difference the seeds agree on"
    elif plan.shared_pretraining:
        covers = (f" The {scope}: every seed's cells start from that one encoder, so the intervals leave out "
                  "how much another pre-training would change the results.")
        agree = ("an interval that excludes 0 is a difference the fine-tuning seeds agree on for this one "
                 "pre-training (seed 0); another pre-training may move it")
    else:
        covers = f" The {scope}."
        agree = "an interval that excludes 0 is a difference the seeds agree on, pre-training included"
    lines = [
        f"# {plan.title}",
        "",
        f"Metrics on the **test split**, mean ± half-width of the 95 % confidence interval over {len(seeds)} "
        f"seed(s) ({', '.join(map(str, seeds))}), Student t with n − 1 degrees of freedom; n = seeds with a "
        f"result.{covers} Every model was selected (best epoch, best round) on the validation split; the test "
        "split was used only for these numbers. Columns: labels per class as a fraction of the training split "
        "(or a count per class), with the number of labeled training images.",
    ]
    length = " ".join(t for t in (plan.training_length, _steps_trained(rows, budgets)) if t)
    if length:
        lines += ["", length]
    if plan.settings:
        lines += ["", "Settings: " + ", ".join(f"`{k}={json.dumps(v)}`" for k, v in plan.settings.items()) + "."]
    for metric in plan.metrics:
        stats = summarize(rows, metric)
        if not stats:
            continue
        lines += ["", f"## {metric}", "", *_table(stats, protocols, budgets, headers, missing)]
        if plan.baseline in protocols and len(protocols) > 1:
            diffs = paired_differences(rows, metric, plan.baseline)  # type: ignore[arg-type]
            shared = [i for i, b in enumerate(budgets) if (plan.baseline, b) in missing]  # columns with a baseline
            others = [p for p in protocols if p != plan.baseline  # a label-free protocol has no such column
                      and any((p, budgets[i]) in missing for i in shared)]
            lines += [] if not others else [
                "",
                f"Gain over `{plan.baseline}` in {metric}, seed by seed (the same labeled images), mean ± 95 % CI; "
                f"{agree}:",
                "",
                *_table(diffs, others, [budgets[i] for i in shared], [headers[i] for i in shared], missing,
                        signed=True),
            ]
    free = [p for p in plan.label_free if p in protocols]
    if free:
        lines += ["", f"Label-free protocol(s) {', '.join(f'`{p}`' for p in free)} train on no label (the 0 % "
                  "column only) and select no epoch (with no label to validate on, their last one is evaluated); their evaluation uses the evaluated split's masks only to name the clusters, as "
                  "their evaluate config reports. `n/a`: no cell by design (a label-free protocol above 0 %, "
                  "the others at 0 %)."]
    if plan.descriptions:
        lines += ["", "Protocols:", ""] + [f"- `{p}`: {d}" for p, d in plan.descriptions.items() if p in protocols]
    left_out = _left_out(rows)
    if left_out:
        lines += ["", "## Cells not in the tables", "", *left_out]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_markdown(rows: Sequence[Mapping[str, Any]], plan: StudyPlan, path: str | Path,
                   notes: Sequence[str] = ()) -> Path:
    """Write :func:`markdown_report` to ``path`` atomically."""
    return atomic_write_text(markdown_report(rows, plan, notes), path)
