"""The sigmoid-shaped ramp-up of the cross-teaching weight (Laine & Aila 2017; Luo et al. 2022)."""

from __future__ import annotations

import math

__all__ = ["sigmoid_rampup", "cross_teaching_weight"]


def sigmoid_rampup(progress: float) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = progress`` clipped to ``[0, 1]``.

    The "sigmoid-shaped" ramp of Laine & Aila (2017, temporal ensembling, eq. in sec. 3.1) that Luo et al.
    (MIDL 2022, cross teaching, eq. 3) use for their unsupervised weight: ``exp(-5) ~ 0.0067`` at the start,
    1 at the end, and flat after it.
    """
    t = min(max(float(progress), 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def cross_teaching_weight(step: int, total_steps: int, max_weight: float = 0.1, rampup_fraction: float = 1.0) -> float:
    """The weight ``lambda`` of the cross-teaching term after ``step`` optimizer steps of ``total_steps``.

    ``lambda = max_weight * exp(-5 (1 - t)^2)`` with ``t = step / (rampup_fraction * total_steps)``: Luo et al.
    ramp from about ``0.0007`` to ``0.1`` over the whole run (``rampup_fraction=1``).

    Args:
        step: optimizer steps done so far.
        total_steps: optimizer steps of the whole run.
        max_weight: the weight at the end of the ramp (paper: 0.1).
        rampup_fraction: the part of the run the ramp takes; the weight stays at ``max_weight`` after it.

    Raises:
        ValueError: a negative ``max_weight``, or a ``rampup_fraction`` outside ``(0, 1]``.
    """
    if max_weight < 0:
        raise ValueError(f"cross_teaching_weight: max_weight must be >= 0, got {max_weight!r}.")
    if not 0 < rampup_fraction <= 1:
        raise ValueError(f"cross_teaching_weight: rampup_fraction must be in (0, 1], got {rampup_fraction!r}.")
    length = max(rampup_fraction * total_steps, 1.0)
    return max_weight * sigmoid_rampup(step / length)
