"""Loading trained weights into a network with errors that say what to run first."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["load_weights", "non_finite_entries"]

def non_finite_entries(state: Mapping[str, Any]) -> list[str]:
    """The names of the floating-point tensors of a state dict that hold NaN or inf (a diverged run's weights)."""
    return [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


_FIX = "pass --model_file <the model to evaluate>"
_SETTINGS = "e.g. head_input, hidden_dim, projection_dim, the number of classes"


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if hasattr(value, "shape") else type(value).__name__


def _first_mismatch(model: nn.Module, state: Mapping[str, Any]) -> str | None:
    """The first difference between ``state`` and ``model.state_dict()``, in a few words (``None``: none found)."""
    expected = model.state_dict()
    for name, value in state.items():
        if name in expected and _shape(value) != _shape(expected[name]):
            return f"{name} has shape {_shape(value)} in the file but {_shape(expected[name])} in the network"
    unexpected = [k for k in state if k not in expected]
    missing = [k for k in expected if k not in state]
    for keys, what in ((missing, "missing from the file"), (unexpected, "in the file but not in the network")):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            return f"'{keys[0]}' is {what}{more}"
    return None


def _one_line(err: BaseException, limit: int = 120) -> str:
    """``err`` as ``Type: first line of its message``, cut to ``limit`` characters."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0].strip()}" if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_weights(model: nn.Module, path: str | os.PathLike, produced_by: str = "", key: str | None = None) -> nn.Module:
    """Load a state dict saved by a bundle into ``model`` (``weights_only=True``) and return ``model``.

    Args:
        model: the network to fill.
        path: the checkpoint file (a state dict, or a dict holding one under ``key``).
        produced_by: which config writes ``path``, named in the errors.
        key: the entry of the checkpoint that holds the state dict, if any.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` cannot be read as a weights file (truncated, not a PyTorch file, not a state
            dict), or its weights do not fit ``model`` (other keys or shapes, e.g. a model trained with
            other head settings or another number of classes). The message names the file, the config
            that writes it and the first mismatch, and says to pass ``--model_file``.
        KeyError: ``key`` is given and the checkpoint has no such entry.
    """
    path = os.fspath(path)
    rerun = f"run {produced_by} again" if produced_by else "train it again"
    if not os.path.isfile(path):
        hint = f" Run {produced_by} first, or point to a trained model file." if produced_by else ""
        raise FileNotFoundError(f"trained weights not found: {path}.{hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files fail in many ways (EOFError, RuntimeError, pickle errors)
        raise ValueError(
            f"cannot read the trained weights in {path} ({_one_line(err)}): the file is truncated or not a "
            f"saved state dict; {rerun}, or {_FIX}."
        ) from err
    if key is not None:
        if not isinstance(state, Mapping) or key not in state:
            held = sorted(state)[:5] if isinstance(state, Mapping) else type(state).__name__
            raise KeyError(f"{path} has no entry '{key}' (it holds {held}).")
        state = state[key]
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict of network weights; {rerun}, or {_FIX}."
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        mismatch = _first_mismatch(model, state) or _one_line(err)
        source = f"The file comes from {produced_by}, run" if produced_by else "The file was written"
        raise ValueError(
            f"the weights in {path} do not fit the network: {mismatch}. {source} with other settings than "
            f"this config's (an older run, or another protocol); {_FIX}, with the settings it was trained "
            f"with ({_SETTINGS})."
        ) from err
    return model
