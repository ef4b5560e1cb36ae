"""The device settings a bundle picks from the machine it runs on (so that no config needs an ``if``)."""

from __future__ import annotations

import torch

__all__ = ["default_amp_dtype", "default_device", "default_sync_interval"]


def default_device() -> torch.device:
    """``cuda:0`` when CUDA is available, else the CPU."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def default_amp_dtype() -> str:
    """``"bfloat16"`` (no gradient scaler needed), or ``"float16"`` on a CUDA GPU without bf16 support."""
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        return "float16"
    return "bfloat16"


def default_sync_interval(on_cuda: int = 20, on_cpu: int = 1) -> int:
    """Iterations between reads of the deferred NaN guard: every step on the CPU, every ``on_cuda`` on a GPU
    (a read waits for the GPU, so it is done rarely there)."""
    return on_cuda if torch.cuda.is_available() else on_cpu
