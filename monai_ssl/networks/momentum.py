"""The momentum (exponential moving average) target of BYOL and its cosine schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_momentum", "momentum_update"]


def cosine_momentum(step: int, total_steps: int, base: float = 0.99, final: float = 1.0) -> float:
    """BYOL's target decay rate after ``step`` of ``total_steps`` optimizer steps.

    Grill et al. 2020, Sec. 3.2: ``tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2``, here with a
    configurable end value ``final`` (1 in the paper). ``tau`` is ``base`` at step 0 and ``final``
    at step ``K``; steps past ``K`` stay at ``final``.

    Args:
        step: optimizer steps done so far (k).
        total_steps: optimizer steps of the whole run (K).
        base: tau at the start (0.99 in the thesis; 0.996 for long runs in the paper).
        final: tau at the end (1.0).
    """
    if total_steps <= 0:
        return final
    progress = min(max(step, 0), total_steps) / total_steps
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def momentum_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """``xi <- tau * xi + (1 - tau) * theta`` for every target tensor xi and online tensor theta.

    Grill et al. 2020, eq. (1). One fused multi-tensor ``lerp`` (``torch._foreach_lerp_``) over all
    parameters instead of a Python loop: ``xi + (1 - tau) * (theta - xi)``.
    """
    if target:
        torch._foreach_lerp_(target, online, 1.0 - tau)


def trainable_pairs(target: nn.Module, online: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The matching parameter lists of a target copy and its online module, checked for shape."""
    target_params, online_params = list(target.parameters()), list(online.parameters())
    if len(target_params) != len(online_params) or any(
        t.shape != o.shape for t, o in zip(target_params, online_params)
    ):
        raise ValueError("target and online networks must have the same parameters (the target is a copy).")
    return target_params, online_params
