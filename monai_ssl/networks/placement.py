"""Put a network on its device in the memory format fast convolutions want."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["place_network"]


def place_network(network: nn.Module, device: str | torch.device, channels_last: bool = False) -> nn.Module:
    """Move ``network`` to ``device``; with ``channels_last`` store its 4D (2D convolution) weights NHWC.

    Tensor-core convolutions (bf16/fp16 on Ampere and Hopper GPUs) run in NHWC; with the weights in
    ``torch.channels_last`` each convolution's output, and so the next one's input, stays NHWC and no
    layout conversion runs between layers (PyTorch's "channels last" tutorial). Convert before wrapping
    the network in ``DistributedDataParallel``. Returns the same module.
    """
    network = network.to(device)
    return network.to(memory_format=torch.channels_last) if channels_last else network
