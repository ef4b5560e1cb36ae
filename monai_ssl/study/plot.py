"""The study's figure: each metric against the label budget (log x), one line per protocol, 95 % CI bands.

With a 0 % column (label-free protocols such as PiCIE) the x axis is linear over [0, 1] instead, the
layout of the S4MI paper's Figure 5, and each label-free protocol is its point at 0 with a dashed
line at its mean across the axis.

Built on an explicit Agg canvas like :mod:`monai_ssl.visualize`, so it works headless and leaves
pyplot alone.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai_ssl.visualize import save_figure

from .summary import summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["save_study_plot", "study_figure"]


def study_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], title: str = "",
                 caption: str = "", label_free: Sequence[str] = ()) -> Figure | None:
    """One panel per metric that has results: mean over seeds against the label budget, CI bands.

    The x axis is logarithmic (1 %, 10 %, 100 % are equally spaced) and ticked at the study's
    budgets. When a budget is the fraction 0 (no labels) the axis is linear over [0, 1] instead,
    ticked at the budgets (0 %, 10 %, ...), as in the S4MI paper's Figure 5; a ``label_free``
    protocol is drawn as its point at 0 with its CI error bar and a dashed horizontal line at its
    mean across the axis (``<name> (no labels)``), to compare every label budget with it. A band is drawn where at least two seeds give an interval (an error bar when a
    protocol has one such point). For a metric whose means all lie in [0, 1] (accuracy, AUC)
    the bands are clipped to [0, 1] for display; the tables give the full intervals.

    Args:
        rows: the study's records (see :mod:`monai_ssl.study.summary`).
        metrics: metric names, one panel each (those without any result are left out).
        title: figure title.
        caption: a line under the panels, e.g. what the intervals cover
            (:func:`~monai_ssl.study.summary.interval_scope`).
        label_free: the protocols that train on no label (study.json ``"label_free": true``).

    Returns:
        The figure, or ``None`` when no cell has a result yet.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(m, summarize(rows, m)) for m in metrics]
    panels = [(m, stats) for m, stats in panels if stats]
    if not panels:
        return None
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    budgets = sorted(dict.fromkeys(r["budget"] for r in rows), key=lambda b: b.value)
    linear = budgets[0].no_labels  # a 0 % column has no place on a log axis
    fig = Figure(figsize=(5.5 * len(panels), 4.5))
    FigureCanvasAgg(fig)
    palette = colormaps["tab10"]
    for i, (metric, stats) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        unit = all(0.0 <= s[0] <= 1.0 for s in stats.values())
        lo, hi = (0.0, 1.0) if unit else (-math.inf, math.inf)
        for j, protocol in enumerate(protocols):
            points = [(b.value, stats[(protocol, b)]) for b in budgets if (protocol, b) in stats]
            if not points:
                continue
            x = [p[0] for p in points]
            mean = [p[1][0] for p in points]
            colour = palette(j % palette.N)
            if linear and protocol in label_free:
                _draw_label_free(ax, protocol, points, colour, lo, hi)
                continue
            ax.plot(x, mean, marker="o", lw=2, color=colour, label=protocol)
            banded = [(xv, m, s[1]) for xv, m, (_, s) in zip(x, mean, points) if s[1] is not None]
            if banded:
                bx = [b[0] for b in banded]
                low = [max(lo, m - h) for _, m, h in banded]
                high = [min(hi, m + h) for _, m, h in banded]
                ax.fill_between(bx, low, high, color=colour, alpha=0.18, lw=0)
                if len(banded) == 1:  # a band of one point is invisible: show it as an error bar
                    m = banded[0][1]
                    ax.errorbar(bx, [m], yerr=[[m - low[0]], [high[0] - m]], color=colour, capsize=4, lw=1)
        ax.set_xscale("linear" if linear else "log")
        ax.set_xticks([b.value for b in budgets])
        ax.set_xticklabels([b.label for b in budgets])
        ax.minorticks_off()
        if linear:
            ax.set_xlim(-0.04, 1.04)
        else:
            ax.set_xlim(budgets[0].value / 1.6, budgets[-1].value * 1.6)
        if unit:
            ax.set_ylim(max(0.0, ax.get_ylim()[0]), min(1.02, ax.get_ylim()[1]))
        kind = budgets[0].kind
        ax.set_xlabel("labeled fraction of the training split" if kind == "fraction" else "labeled images per class")
        ax.set_ylabel(f"test {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9, title="mean, 95% CI over seeds", title_fontsize=8)
    if title:
        fig.suptitle(title)
    if caption:  # wrapped to the figure's width (about 16 characters of 8 pt per inch), in lines of even length
        full = f"95% CI over seeds: {caption}"
        lines = textwrap.wrap(full, width=int(16 * 5.5 * len(panels)), break_on_hyphens=False)
        if len(lines) > 1:
            lines = textwrap.wrap(full, width=math.ceil(len(full) / len(lines)) + 8, break_on_hyphens=False)
        fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", multialignment="center", fontsize=8)
        fig.tight_layout(rect=(0.0, 0.04 * len(lines) + 0.01, 1.0, 1.0))
    else:
        fig.tight_layout()
    return fig


def _draw_label_free(ax: Any, protocol: str, points: Sequence[tuple[float, Any]], colour: Any, lo: float,
                     hi: float) -> None:
    """A label-free protocol: its point at x=0 with the CI error bar, and a dashed line at its mean.

    Its mean is the first of ``points`` (it has cells only at fraction 0); the error bar is clipped
    to ``[lo, hi]`` like the bands.
    """
    x, (mean, half, _) = points[0]
    if half is not None:
        low, high = max(lo, mean - half), min(hi, mean + half)
        ax.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], color=colour, capsize=4, lw=1)
    ax.plot([x], [mean], marker="s", ms=7, ls="none", color=colour)
    ax.axhline(mean, ls="--", lw=1.5, color=colour, label=f"{protocol} (no labels)")


def save_study_plot(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], path: str | Path,
                    title: str = "", caption: str = "", label_free: Sequence[str] = ()) -> Path | None:
    """Draw :func:`study_figure` and save it as a PNG atomically; nothing is written without results."""
    fig = study_figure(rows, metrics, title, caption, label_free)
    return None if fig is None else save_figure(fig, path)
