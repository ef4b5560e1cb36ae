"""Mean and 95 % confidence interval of a few numbers (Student t), without SciPy.

A study repeats every setting over a handful of seeds; the interval of the mean then needs the
Student t quantile with ``n - 1`` degrees of freedom, not the normal 1.96 (for 5 seeds the
factor is 2.776, not 1.96). The 0.975 quantiles for 1..30 degrees of freedom are tabulated;
beyond, the Cornish-Fisher expansion of t around the normal quantile is exact to 1e-7.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["mean_ci95", "t_quantile_975"]

# Student t 0.975 quantiles for 1..30 degrees of freedom (6 decimals)
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)
_Z975 = 1.959963984540054  # standard normal 0.975 quantile


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (two-sided 95 %).

    Args:
        df: degrees of freedom, an integer >= 1.

    Raises:
        ValueError: ``df`` is not an integer >= 1.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"t_quantile_975: degrees of freedom must be an integer >= 1, got {df!r}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(term / df ** (k + 1) for k, term in enumerate(terms))


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None, int]:
    """Mean of ``values`` and the half-width of its 95 % confidence interval.

    The interval is ``mean ± t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the sample standard
    deviation (``n - 1`` in the denominator).

    Args:
        values: at least one finite number (e.g. a test accuracy per seed).

    Returns:
        ``(mean, half_width, n)``; ``half_width`` is ``None`` for a single value (no interval).

    Raises:
        ValueError: ``values`` is empty or holds a non-finite number.
    """
    numbers = [float(v) for v in values]
    if not numbers:
        raise ValueError("mean_ci95: no values")
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"mean_ci95: values must be finite, got {numbers}")
    n = len(numbers)
    mean = math.fsum(numbers) / n
    if n == 1:
        return mean, None, 1
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in numbers) / (n - 1))
    return mean, t_quantile_975(n - 1) * sd / math.sqrt(n), n
