from __future__ import annotations

import math

import pytest
import torch

from monai_ssl.networks import cosine_momentum, momentum_update


def test_cosine_schedule_end_points_and_midpoint():
    assert cosine_momentum(0, 100, base=0.99) == pytest.approx(0.99)
    assert cosine_momentum(100, 100, base=0.99) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, base=0.99) == pytest.approx(0.995)
    assert cosine_momentum(250, 100, base=0.99) == pytest.approx(1.0)
    k = 30
    assert cosine_momentum(k, 100, 0.996) == pytest.approx(1 - 0.004 * (math.cos(math.pi * k / 100) + 1) / 2)
    values = [cosine_momentum(i, 20) for i in range(21)]
    assert values == sorted(values)


def test_momentum_update_is_an_exponential_moving_average():
    target = [torch.zeros(3), torch.ones(2, 2)]
    online = [torch.ones(3), torch.full((2, 2), 3.0)]
    momentum_update(target, online, tau=0.75)
    torch.testing.assert_close(target[0], torch.full((3,), 0.25))
    torch.testing.assert_close(target[1], torch.full((2, 2), 1.5))
    momentum_update(target, online, tau=1.0)
    torch.testing.assert_close(target[0], torch.full((3,), 0.25))
    momentum_update(target, online, tau=0.0)
    torch.testing.assert_close(target[1], online[1])
