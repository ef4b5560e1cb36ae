from __future__ import annotations

import math

import numpy as np
import pytest

from monai_ssl.networks import cosine_momentum
from monai_ssl.utils import cosine_schedule


def test_end_points_and_midpoint_without_warmup():
    assert cosine_schedule(0.996, 1.0, 100, step=0) == pytest.approx(0.996)
    assert cosine_schedule(0.996, 1.0, 100, step=50) == pytest.approx(0.998)  # cos(pi/2) = 0: halfway
    assert cosine_schedule(0.996, 1.0, 100, step=100) == pytest.approx(1.0)
    assert cosine_schedule(0.996, 1.0, 100, step=1000) == pytest.approx(1.0)  # stays at final past the end
    assert cosine_schedule(0.04, 0.4, 4, step=1) == pytest.approx(0.4 + (0.04 - 0.4) * (1 + math.cos(math.pi / 4)) / 2)


def test_equals_cosine_momentum_at_every_step():
    values = [cosine_schedule(0.99, 1.0, 37, step=k) for k in range(40)]
    assert values == pytest.approx([cosine_momentum(k, 37, base=0.99, final=1.0) for k in range(40)])


def test_linear_warmup_then_cosine():
    # 5 warm-up steps from 0 to 1: evenly spaced, reaching base at step 4 (the reference's np.linspace)
    assert [cosine_schedule(1.0, 0.0, 15, warmup_steps=5, step=k) for k in range(5)] == pytest.approx(
        [0.0, 0.25, 0.5, 0.75, 1.0]
    )
    assert cosine_schedule(1.0, 0.0, 15, warmup_steps=5, step=5) == pytest.approx(1.0)  # cosine starts at base
    assert cosine_schedule(1.0, 0.0, 15, warmup_steps=5, step=10) == pytest.approx(0.5)  # halfway of 10 cosine steps
    assert cosine_schedule(1.0, 0.0, 15, warmup_steps=5, warmup_start=0.2, step=2) == pytest.approx(0.6)
    assert cosine_schedule(1.0, 0.0, 15, warmup_steps=1, warmup_start=0.3, step=0) == pytest.approx(0.3)


def test_array_of_all_steps_matches_the_values():
    values = cosine_schedule(5e-4, 1e-6, 12, warmup_steps=3)
    assert isinstance(values, np.ndarray) and values.shape == (12,) and values.dtype == np.float64
    assert values.tolist() == pytest.approx([cosine_schedule(5e-4, 1e-6, 12, 3, step=k) for k in range(12)])
    assert values[0] == 0.0 and values[2] == pytest.approx(5e-4) and values[-1] > 1e-6
    assert np.all(np.diff(values[3:]) < 0)  # decreasing cosine after the warm-up


@pytest.mark.parametrize(
    "kwargs", [{"total_steps": 0}, {"total_steps": 5, "warmup_steps": 5}, {"total_steps": 5, "warmup_steps": -1}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="cosine_schedule"):
        cosine_schedule(1.0, 0.0, **kwargs)
    with pytest.raises(ValueError, match="step"):
        cosine_schedule(1.0, 0.0, 5, step=-1)
