"""``BYOLTrainer``: BYOL on the one self-supervised trainer, kept for its constructor and output API."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai_ssl.engines.ssl_trainer import SelfSupervisedTrainer, prepare_view_list
from monai_ssl.methods.byol import BYOLMethod
from monai_ssl.networks.distributed import unwrap_parallel

__all__ = ["BYOLTrainer", "byol_scalars", "prepare_views"]


def prepare_views(
    batchdata: dict[Hashable, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    view_keys: Sequence[str] = ("view1", "view2"),
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take the two augmented views of a batch and move them to ``device`` (:func:`prepare_view_list` of two).

    Raises:
        ValueError: ``view_keys`` does not name exactly two views.
        KeyError: a view key is missing from the batch (naming it, and the keys that are there).
    """
    if len(view_keys) != 2:
        raise ValueError(f"BYOL reads exactly 2 views, got view_keys={tuple(view_keys)}.")
    missing = [k for k in view_keys if k not in batchdata]
    if missing:
        raise KeyError(
            f"BYOL batch has no {missing} (keys present: {sorted(map(str, batchdata))}); the transforms must produce "
            f"both views, e.g. monai_ssl.transforms.BYOLViewsd(keys='image', view_keys={tuple(view_keys)})."
        )
    view1, view2 = prepare_view_list(batchdata, device, non_blocking, view_keys=view_keys, **kwargs)
    return view1, view2


class BYOLTrainer(SelfSupervisedTrainer):
    """BYOL pre-training (Grill et al., NeurIPS 2020, Algorithm 1) on the one self-supervised trainer.

    This is :class:`~monai_ssl.engines.SelfSupervisedTrainer` running the
    :class:`~monai_ssl.methods.BYOLMethod` it builds from ``tau_base``, ``tau_final``, ``loss_function``
    and ``view_keys``; it has no step of its own and is kept for its constructor, its attributes
    (``optimizer``, ``tau_base``, :meth:`current_tau`, ...) and its messages. New code can use
    ``SelfSupervisedTrainer(..., method=BYOLMethod(...), ...)`` directly: the values are the same.

    Each iteration takes the two views of a batch, computes the symmetric loss of the online
    predictions against the target projections (eq. 2), back-propagates through the online network
    only, steps the optimizer and then moves the target towards the online network with
    ``tau`` from the cosine schedule over optimizer steps (eq. 1 and Sec. 3.2). With gradient
    accumulation the optimizer (and so the target and ``tau``) steps once per
    ``accumulation_steps`` iterations, and once more at the end of an epoch for a remainder.
    The number of optimizer steps done is ``engine.state.optimizer_steps``; it is part of the trainer's
    ``state_dict`` so a run resumed from a checkpoint continues the ``tau`` schedule. Under amp with a
    gradient scaler, a step the scaler skips (inf/NaN gradients) is no step: the target does not move and
    ``optimizer_steps`` does not advance (:func:`~monai_ssl.engines.scaled_optimizers_step`).

    ``engine.state.output`` after each iteration is a dict: ``loss`` (detached), ``tau`` (the decay
    rate used for this iteration's update), ``lr`` (first parameter group), ``projection_std``
    (mean over dimensions of the standard deviation over the batch of the L2-normalised online
    projections: about ``1/sqrt(D)`` for well spread projections, 0 when they collapse),
    ``projection_dim``, ``optimizer_stepped`` (whether the optimizer and the target stepped in this
    iteration: False while accumulating gradients and when the gradient scaler skipped the step),
    ``method`` (``"byol"``) and the two views (``view1``, ``view2``) for image logging.

    Args:
        device: where to train.
        max_epochs: epochs to run.
        train_data_loader: yields dicts with the two views (see ``view_keys``).
        network: a :class:`~monai_ssl.networks.BYOL` module, possibly wrapped in
            ``DistributedDataParallel``.
        optimizer: optimizer of the online parameters.
        loss_function: defaults to :class:`~monai_ssl.losses.BYOLLoss`.
        tau_base: decay rate at the first step (0.99).
        tau_final: decay rate at the last step (1.0).
        view_keys: keys of the two views in each batch.
        prepare_batch: ``(batch, device, non_blocking, view_keys=..., **kwargs) -> (view1, view2)``.
        epoch_length, non_blocking, train_handlers, amp, accumulation_steps, optim_set_to_none, amp_kwargs,
            to_kwargs, finite_check_interval: as in :class:`~monai_ssl.engines.OptimizerStepTrainer`.
        channels_last: give 2D views to the network in ``torch.channels_last`` memory format (pair it with
            :func:`~monai_ssl.networks.place_network` ``(channels_last=True)``; tensor cores run NHWC).
        compile: compile the network in place with ``torch.compile`` (``nn.Module.compile``: the module and
            its ``state_dict`` keys stay the same, so checkpoints and the encoder export are unchanged).

    Raises:
        ValueError: ``tau_base``/``tau_final`` outside ``0 <= tau_base <= tau_final <= 1``, or ``view_keys``
            not two keys.
        TypeError: ``network`` has no ``update_target(tau)`` (it is not a BYOL network).

    The fast path on a GPU: ``prepare_batch=`` :class:`~monai_ssl.engines.DeviceViews`, ``amp=True`` with
    ``amp_kwargs={"dtype": torch.bfloat16}`` (no gradient scaler), ``channels_last=True``,
    ``non_blocking=True`` with a pinned loader, and ``finite_check_interval`` > 1.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: nn.Module,
        optimizer: Optimizer,
        loss_function: Callable | None = None,
        tau_base: float = 0.99,
        tau_final: float = 1.0,
        view_keys: Sequence[str] = ("view1", "view2"),
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = prepare_views,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        accumulation_steps: int = 1,
        optim_set_to_none: bool = False,
        amp_kwargs: dict | None = None,
        to_kwargs: dict | None = None,
        finite_check_interval: int = 1,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        method = BYOLMethod(tau_base=tau_base, tau_final=tau_final, loss_function=loss_function, view_keys=view_keys)
        if not hasattr(unwrap_parallel(network), "update_target"):
            raise TypeError(f"BYOLTrainer needs a BYOL network with `update_target(tau)`, got {type(network).__name__}.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            method=method,
            network=network,
            optimizer=optimizer,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            train_handlers=train_handlers,
            amp=amp,
            accumulation_steps=accumulation_steps,
            optim_set_to_none=optim_set_to_none,
            amp_kwargs=amp_kwargs,
            to_kwargs=to_kwargs,
            finite_check_interval=finite_check_interval,
            channels_last=channels_last,
            compile=compile,
        )
        self.run_name = "BYOL pre-training"
        self.optimizer = optimizer

    @property
    def loss_function(self) -> Callable:
        """The BYOL loss (the method's)."""
        return self.method.loss_function

    @property
    def tau_base(self) -> float:
        """``tau`` at the first optimizer step."""
        return self.method.tau_base

    @property
    def tau_final(self) -> float:
        """``tau`` at the last optimizer step."""
        return self.method.tau_final

    @property
    def view_keys(self) -> tuple[str, ...]:
        """Keys of the two views in each batch."""
        return self.method.view_keys

    def current_tau(self) -> float:
        """``tau`` for the next momentum update (cosine over optimizer steps, Sec. 3.2)."""
        return self.method.momentum(self.state.optimizer_steps, self.total_optimizer_steps)

    def check_finite(self, loss: torch.Tensor, what: str = "loss") -> None:
        """The shared NaN guard, naming the loss ``"BYOL loss"`` as this trainer's messages always have."""
        super().check_finite(loss, "BYOL loss" if what == f"{self.method.name} loss" else what)


def byol_scalars(output: dict[str, Any]) -> dict[str, float]:
    """The scalars of a BYOL output, tagged for TensorBoard (``byol/loss``, ``byol/lr``, ...).

    Use as ``output_transform`` of :class:`monai.handlers.TensorBoardStatsHandler`.
    """
    return {f"byol/{k}": float(output[k]) for k in ("loss", "lr", "tau", "projection_std") if k in output}
