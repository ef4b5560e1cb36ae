"""Loading trained weights into a network with errors that say what to run first."""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["load_weights"]


def load_weights(model: nn.Module, path: str | os.PathLike, produced_by: str = "", key: str | None = None) -> nn.Module:
    """Load a state dict saved by a bundle into ``model`` (``weights_only=True``) and return ``model``.

    Args:
        model: the network to fill.
        path: the checkpoint file (a state dict, or a dict holding one under ``key``).
        produced_by: which config writes ``path``, named in the error when it is missing.
        key: the entry of the checkpoint that holds the state dict, if any.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        hint = f" Run {produced_by} first, or point to a trained model file." if produced_by else ""
        raise FileNotFoundError(f"trained weights not found: {path}.{hint}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if key is not None:
        if key not in state:
            raise KeyError(f"{path} has no entry '{key}' (it holds {sorted(state)[:5]}).")
        state = state[key]
    model.load_state_dict(state)
    return model
