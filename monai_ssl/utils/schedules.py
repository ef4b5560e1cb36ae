"""Cosine schedules with a linear warm-up, counted in optimizer steps (DINO's learning rate, weight decay
and teacher momentum)."""

from __future__ import annotations

import math
from typing import overload

import numpy as np

__all__ = ["cosine_schedule"]


@overload
def cosine_schedule(
    base: float, final: float, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.0, *, step: int
) -> float: ...


@overload
def cosine_schedule(
    base: float, final: float, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.0, *, step: None = None
) -> np.ndarray: ...


def cosine_schedule(
    base: float,
    final: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
    *,
    step: int | None = None,
) -> float | np.ndarray:
    """A linear warm-up from ``warmup_start`` to ``base``, then a half cosine from ``base`` to ``final``.

    The schedule of the DINO reference code (``utils.cosine_scheduler``; Caron et al. 2021, Sec. 3 and
    Appendix C), used there for the learning rate (10 warm-up epochs from 0, cosine to 1e-6), the weight
    decay (0.04 -> 0.4) and the teacher momentum (0.996 -> 1). For ``W = warmup_steps`` and
    ``K = total_steps``:

    - ``k < W``: ``warmup_start + (base - warmup_start) * k / (W - 1)`` (evenly spaced, ``base`` reached at
      step ``W - 1``; ``warmup_start`` when ``W == 1``),
    - ``W <= k < K``: ``final + (base - final) * (1 + cos(pi * (k - W) / (K - W))) / 2``,
    - ``k >= K``: ``final``.

    Without warm-up this equals :func:`monai_ssl.networks.cosine_momentum` ``(k, K, base, final)`` at every
    step, so BYOL's target decay and DINO's teacher momentum follow one formula. (Ignite's and MONAI's
    schedulers drive optimizer parameter groups only; this one also drives values that are not in the
    optimizer, such as the teacher momentum.)

    Args:
        base: the value at the end of the warm-up (the start of the cosine).
        final: the value the cosine reaches at ``total_steps``.
        total_steps: optimizer steps of the whole run, warm-up included (epochs x steps per epoch).
        warmup_steps: optimizer steps of the linear warm-up (0: none).
        warmup_start: the value at step 0 of the warm-up.
        step: optimizer steps done so far; ``None`` returns the values of all ``total_steps`` steps.

    Returns:
        the value at ``step`` as a float, or a float64 array of length ``total_steps`` (the reference
        code's array, entry for entry).

    Raises:
        ValueError: ``total_steps < 1``, or ``warmup_steps`` outside ``[0, total_steps)``, or ``step < 0``.
    """
    if total_steps < 1:
        raise ValueError(f"cosine_schedule needs total_steps >= 1, got {total_steps}.")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"cosine_schedule needs 0 <= warmup_steps < total_steps ({total_steps}), got {warmup_steps}.")
    if step is None:
        return np.array([_value(k, base, final, total_steps, warmup_steps, warmup_start) for k in range(total_steps)])
    if step < 0:
        raise ValueError(f"cosine_schedule: step must be >= 0, got {step}.")
    return _value(step, base, final, total_steps, warmup_steps, warmup_start)


def _value(step: int, base: float, final: float, total_steps: int, warmup_steps: int, warmup_start: float) -> float:
    """The schedule's value at one step (arguments checked by :func:`cosine_schedule`)."""
    if step < warmup_steps:
        if warmup_steps == 1:
            return float(warmup_start)
        return float(warmup_start + (base - warmup_start) * step / (warmup_steps - 1))
    if step >= total_steps:
        return float(final)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return float(final + (base - final) * (1.0 + math.cos(math.pi * progress)) / 2.0)
