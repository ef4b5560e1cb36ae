"""Scoring the unlabeled pool: class probabilities of every image, in loader order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from torch import nn

__all__ = ["autocast_dtype", "logits_to_probabilities", "score_items", "score_pool"]


def logits_to_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities (B, K) of classifier outputs, in float32.

    ``(B, K)`` logits with ``K >= 2`` go through a softmax over classes; a single-logit binary head,
    ``(B, 1)`` or ``(B,)``, goes through a sigmoid and becomes the two columns ``[1 - p, p]``.

    Raises:
        TypeError: the output is not a tensor.
        ValueError: the output is not (B,), (B, 1) or (B, K).
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"the classifier must return a tensor of logits, got {type(logits).__name__}; wrap the network "
            "so that its forward returns (B, K) logits."
        )
    logits = logits.float()
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        p = torch.sigmoid(logits.reshape(-1))
        return torch.stack([1.0 - p, p], dim=1)
    if logits.ndim != 2:
        raise ValueError(f"expected classifier logits of shape (B, K), (B, 1) or (B,), got {tuple(logits.shape)}.")
    return torch.softmax(logits, dim=1)


def _batch_ids(batch: dict[str, Any], id_key: str, size: int) -> list[str]:
    """The ids of a collated batch as strings, checked against the batch size."""
    if id_key not in batch:
        raise KeyError(f"batch has no '{id_key}' (keys present: {sorted(batch)}); every pool item needs an id.")
    raw = batch[id_key]
    ids = [str(i) for i in (raw.tolist() if isinstance(raw, (torch.Tensor, np.ndarray)) else raw)]
    if len(ids) != size:
        raise ValueError(f"batch has {size} images but {len(ids)} ids under '{id_key}'.")
    return ids


def score_pool(
    network: nn.Module,
    data_loader: Iterable,
    device: str | torch.device,
    amp: bool = False,
    image_key: str = "image",
    id_key: str = "id",
    amp_dtype: torch.dtype | str | None = None,
    channels_last: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Predict the class probabilities of every item of ``data_loader``.

    The prediction step of the pseudo-labeling rounds of "Integration of Self-Supervised BYOL in
    Semi-Supervised Medical Image Recognition": the network runs in eval mode under
    ``torch.inference_mode()``, batch by batch, and its outputs become probabilities with
    :func:`logits_to_probabilities`. Every module's training flag is restored afterwards (also on
    error), so a partly frozen network comes back exactly as it was.

    The host never waits for the device inside the loop: images are copied with ``non_blocking=True``
    on CUDA (a loader with ``pin_memory=True`` overlaps copies and compute), the probabilities of each
    batch stay on the device, and they come back in one copy at the end. With ``amp`` the forward runs
    under ``torch.autocast`` of the device type in ``amp_dtype`` (default: bfloat16 where the device has
    it, else float16); the probabilities are computed in float32. With ``channels_last`` 2D image
    batches go to the network in ``torch.channels_last`` memory format (give it a network stored so:
    :func:`~monai_ssl.networks.place_network`). Scoring holds no gradients, so it takes batches several
    times larger than training.

    Args:
        network: the classifier, returning (B, K) logits or a single binary logit.
        data_loader: yields dict batches with ``image_key`` and ``id_key``; must not shuffle when
            the order matters to the caller (ids are returned alongside in any case).
        device: where to run the network (it must already live there).
        amp: autocast the forward pass.
        image_key: key of the image batch.
        id_key: key of the item ids (a list of strings after collation).
        amp_dtype: the autocast dtype (``torch.bfloat16``, ``"float16"``, ...).
        channels_last: NHWC image batches.

    Returns:
        ``(probabilities, ids)``: a float32 ``(N, K)`` array and the N ids, in loader order. An
        empty loader gives a ``(0, 0)`` array and no ids.

    Raises:
        KeyError: a batch lacks ``image_key`` or ``id_key``.
    """
    device = torch.device(device)
    non_blocking = device.type == "cuda"
    dtype = autocast_dtype(device, amp_dtype)
    modes = [(m, m.training) for m in network.modules()]
    chunks: list[torch.Tensor] = []
    ids: list[str] = []
    network.eval()
    try:
        with torch.inference_mode():
            for batch in data_loader:
                if image_key not in batch:
                    raise KeyError(f"batch has no '{image_key}' (keys present: {sorted(batch)}).")
                images = torch.as_tensor(batch[image_key])
                if hasattr(images, "as_tensor"):  # MONAI MetaTensor: plain tensor, no metadata tracking
                    images = images.as_tensor()
                images = images.to(device, non_blocking=non_blocking)
                if channels_last and images.ndim == 4:
                    images = images.contiguous(memory_format=torch.channels_last)
                ids += _batch_ids(batch, id_key, images.shape[0])
                with torch.autocast(device.type, enabled=amp, dtype=dtype):
                    logits = network(images)
                chunks.append(logits_to_probabilities(logits))
    finally:
        for module, training in modes:
            module.training = training
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), []
    return torch.cat(chunks).cpu().numpy().astype(np.float32, copy=False), ids


def autocast_dtype(device: torch.device, amp_dtype: torch.dtype | str | None = None) -> torch.dtype:
    """The autocast dtype: ``amp_dtype`` (a dtype or its name), else bfloat16 where ``device`` has it, else float16.

    Raises:
        ValueError: ``amp_dtype`` names no floating dtype.
    """
    if amp_dtype is None:
        if device.type == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16
    dtype = getattr(torch, amp_dtype, None) if isinstance(amp_dtype, str) else amp_dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"amp_dtype must be a floating dtype such as 'bfloat16' or 'float16', got {amp_dtype!r}.")
    return dtype


def score_items(
    network: nn.Module,
    items: Sequence[Mapping],
    transform: Callable | None,
    device: str | torch.device,
    loader_kwargs: Mapping[str, Any] | None = None,
    **score_kwargs: Any,
) -> tuple[np.ndarray, list[str]]:
    """:func:`score_pool` over a new ``monai.data.DataLoader(Dataset(items, transform))``, in item order.

    Args:
        network: the classifier, on ``device``.
        items: the pool items (``"image"``, ``"id"``).
        transform: their transform (the validation preprocessing, no random augmentation).
        device: where the network runs.
        loader_kwargs: arguments of the loader (defaults: ``batch_size=32``, ``num_workers=0``,
            ``pin_memory`` on CUDA); it never shuffles.
        score_kwargs: ``amp``, ``amp_dtype``, ``channels_last`` of :func:`score_pool`.
    """
    device = torch.device(device)
    kwargs = {"batch_size": 32, "num_workers": 0, "pin_memory": device.type == "cuda", **dict(loader_kwargs or {})}
    kwargs["shuffle"] = False
    loader = DataLoader(Dataset(list(items), transform=transform), **kwargs)
    return score_pool(network, loader, device, **score_kwargs)
