"""The study's figure: a log x axis over label budgets, or with a 0 % column a linear one and the
label-free protocol as a point at 0 with a dashed line at its mean (the S4MI paper's Figure 5 layout)."""

from __future__ import annotations

import pytest

from monai_ssl.study import parse_fractions, save_study_plot, study_figure


def _rows(fractions: str, picie: bool) -> list[dict]:
    rows = []
    for budget in parse_fractions(fractions, allow_zero=True):
        for seed in (0, 1):
            if budget.value == 0:
                if picie:  # 0.40 and 0.44: mean 0.42
                    rows.append({"protocol": "picie", "budget": budget, "seed": seed, "status": "ok",
                                 "metrics": {"iou": 0.40 + 0.04 * seed}})
                continue
            rows.append({"protocol": "supervised", "budget": budget, "seed": seed, "status": "ok",
                         "metrics": {"iou": 0.5 + budget.value / 4 + seed / 100}})
    return rows


def _dashed(ax) -> list:
    return [line for line in ax.lines if line.get_linestyle() == "--"]


def test_a_zero_column_gives_a_linear_axis_and_a_dashed_line_at_the_label_free_mean():
    fig = study_figure(_rows("0,0.1,0.5,1.0", picie=True), ["iou"], label_free=["picie"])
    (ax,) = fig.axes
    assert ax.get_xscale() == "linear"
    assert list(ax.get_xticks()) == pytest.approx([0.0, 0.1, 0.5, 1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0%", "10%", "50%", "100%"]
    assert ax.get_xlim()[0] < 0 < 1 < ax.get_xlim()[1]
    (line,) = _dashed(ax)
    assert line.get_label() == "picie (no labels)"
    assert list(line.get_ydata()) == pytest.approx([0.42, 0.42])
    assert list(line.get_xdata()) == [0, 1]  # in axes coordinates: across the whole axis
    # the point at x=0 (its error bar is a collection) and the supervised line at the three budgets
    points = [line for line in ax.lines if list(line.get_xdata()) == [0.0]]
    assert points and list(points[0].get_ydata()) == pytest.approx([0.42])
    supervised = [line for line in ax.lines if line.get_label() == "supervised"]
    assert list(supervised[0].get_xdata()) == pytest.approx([0.1, 0.5, 1.0])
    assert ax.collections  # the CI error bar of picie and the band of supervised
    assert "picie (no labels)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_without_zero_the_axis_stays_logarithmic():
    fig = study_figure(_rows("0.1,0.5,1.0", picie=False), ["iou"], label_free=["picie"])
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert _dashed(ax) == []
    assert ax.get_xlim() == pytest.approx((0.1 / 1.6, 1.6))


def test_the_figure_is_saved(tmp_path):
    path = save_study_plot(_rows("0,1.0", picie=True), ["iou"], tmp_path / "results.png", label_free=("picie",))
    assert path == tmp_path / "results.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
