"""Mean and 95 % confidence interval over seeds (Student t)."""

from __future__ import annotations

import math

import pytest

from monai_ssl.study import mean_ci95, t_quantile_975


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423),
                                          (31, 2.0395), (60, 2.0003), (120, 1.9799), (10**6, 1.9600)])
def test_t_quantile_known_values(df, expected):
    assert t_quantile_975(df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_matches_scipy_everywhere():
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, 301):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-6)


@pytest.mark.parametrize("df", [0, -1, 2.5, True])
def test_t_quantile_rejects_bad_df(df):
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile_975(df)


def test_mean_ci_of_five_values():
    mean, half, n = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    sd = math.sqrt(2.5)  # sample standard deviation of 1..5
    assert (mean, n) == (3.0, 5)
    assert half == pytest.approx(2.776445 * sd / math.sqrt(5))  # t(0.975, 4) = 2.776445
    assert half == pytest.approx(1.963243, abs=1e-6)


def test_mean_ci_of_one_value_has_no_interval_and_equal_values_a_zero_one():
    assert mean_ci95([0.7]) == (0.7, None, 1)
    assert mean_ci95([0.5, 0.5, 0.5]) == (0.5, 0.0, 3)


@pytest.mark.parametrize("values", [[], [1.0, float("nan")], [float("inf")]])
def test_mean_ci_rejects_empty_or_non_finite(values):
    with pytest.raises(ValueError, match="mean_ci95"):
        mean_ci95(values)
