"""``BYOLTrainer``: the BYOL pre-training loop as a MONAI ``Trainer`` (an Ignite engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.engines.utils import IterationEvents
from torch import nn
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai_ssl.engines.step_trainer import OptimizerStepTrainer
from monai_ssl.losses import BYOLLoss
from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.networks.momentum import cosine_momentum

__all__ = ["BYOLTrainer", "byol_scalars", "prepare_views"]


def prepare_views(
    batchdata: dict[str, torch.Tensor],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    view_keys: Sequence[str] = ("view1", "view2"),
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take the two augmented views of a batch and move them to ``device``.

    Raises:
        KeyError: a view key is missing from the batch (name it, and the keys that are there).
    """
    missing = [k for k in view_keys if k not in batchdata]
    if missing:
        raise KeyError(
            f"BYOL batch has no {missing} (keys present: {sorted(batchdata)}); the transforms must produce both "
            f"views, e.g. monai_ssl.transforms.BYOLViewsd(keys='image', view_keys={tuple(view_keys)})."
        )
    v1, v2 = (torch.as_tensor(batchdata[k]).to(device=device, non_blocking=non_blocking, **kwargs) for k in view_keys)
    return v1, v2


class BYOLTrainer(OptimizerStepTrainer):
    """BYOL pre-training (Grill et al., NeurIPS 2020, Algorithm 1) as a MONAI trainer.

    Each iteration takes the two views of a batch, computes the symmetric loss of the online
    predictions against the target projections (eq. 2), back-propagates through the online network
    only, steps the optimizer and then moves the target towards the online network with
    ``tau`` from the cosine schedule over optimizer steps (eq. 1 and Sec. 3.2). With gradient
    accumulation the optimizer (and so the target and ``tau``) steps once per
    ``accumulation_steps`` iterations, and once more at the end of an epoch for a remainder.

    The step machinery (amp and the gradient scaler, accumulation, the optimizer-step count, the NaN
    guard, no empty epochs) is :class:`~monai_ssl.engines.OptimizerStepTrainer`'s; the target update is
    its :meth:`after_optimizer_step`. The number of optimizer steps done is
    ``engine.state.optimizer_steps``; it is part of the trainer's ``state_dict`` so a run resumed from a
    checkpoint continues the ``tau`` schedule.
    Under amp with a gradient scaler, a step the scaler skips (inf/NaN gradients) is no step: the
    target does not move and ``optimizer_steps`` does not advance (:func:`~monai_ssl.engines.scaled_optimizers_step`).

    ``engine.state.output`` after each iteration is a dict: ``loss`` (detached), ``tau`` (the decay
    rate used for this iteration's update), ``lr`` (first parameter group), ``projection_std``
    (mean over dimensions of the standard deviation over the batch of the L2-normalised online
    projections: about ``1/sqrt(D)`` for well spread projections, 0 when they collapse),
    ``optimizer_stepped`` (whether the optimizer and the target stepped in this iteration: False
    while accumulating gradients and when the gradient scaler skipped the step), and the two views
    (``view1``, ``view2``) for image logging.

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
        prepare_batch: ``(batch, device, non_blocking, **kwargs) -> (view1, view2)``.
        epoch_length, non_blocking, train_handlers, amp, accumulation_steps, optim_set_to_none, amp_kwargs,
            to_kwargs, finite_check_interval: as in :class:`~monai_ssl.engines.OptimizerStepTrainer`.
        channels_last: give 2D views to the network in ``torch.channels_last`` memory format (pair it with
            :func:`~monai_ssl.networks.place_network` ``(channels_last=True)``; tensor cores run NHWC).
        compile: compile the network in place with ``torch.compile`` (``nn.Module.compile``: the module and
            its ``state_dict`` keys stay the same, so checkpoints and the encoder export are unchanged). The
            first iterations are slower while it compiles.

    The fast path on a GPU (what the BYOL bundles use with GPU views): ``prepare_batch=``
    :class:`~monai_ssl.engines.DeviceViews`, ``amp=True`` with ``amp_kwargs={"dtype": torch.bfloat16}`` (no
    gradient scaler), ``channels_last=True``, ``non_blocking=True`` with a pinned loader, and
    ``finite_check_interval`` > 1; the handlers then read values every few iterations, not at each one.
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
        if not 0.0 <= tau_base <= tau_final <= 1.0:
            raise ValueError(f"need 0 <= tau_base <= tau_final <= 1, got tau_base={tau_base}, tau_final={tau_final}.")
        if not hasattr(unwrap_parallel(network), "update_target"):
            raise TypeError(f"BYOLTrainer needs a BYOL network with `update_target(tau)`, got {type(network).__name__}.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            optimizers=optimizer,
            run_name="BYOL pre-training",
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
        )
        if compile:
            network.compile()
        self.network = network
        self.optimizer = optimizer
        self.loss_function = loss_function if loss_function is not None else BYOLLoss()
        self.tau_base = tau_base
        self.tau_final = tau_final
        self.view_keys = tuple(view_keys)
        self.channels_last = channels_last

    def current_tau(self) -> float:
        """``tau`` for the next momentum update."""
        return cosine_momentum(self.state.optimizer_steps, self.total_optimizer_steps, self.tau_base, self.tau_final)

    def after_optimizer_step(self) -> None:
        """Move the target towards the online network with this step's ``tau`` (eq. 1), after the step."""
        unwrap_parallel(self.network).update_target(self.current_tau())

    def _iteration(self, engine: BYOLTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One BYOL step: loss of both views, backward, optimizer step, momentum update of the target."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        view1, view2 = engine.prepare_batch(
            batchdata, engine.state.device, engine.non_blocking, view_keys=engine.view_keys, **engine.to_kwargs
        )
        if engine.channels_last and view1.ndim == 4:
            view1, view2 = (v.contiguous(memory_format=torch.channels_last) for v in (view1, view2))
        if view1.shape[0] < 2:
            raise ValueError(
                f"BYOL got a batch of {view1.shape[0]} sample in '{engine.view_keys[0]}' at iteration "
                f"{engine.state.iteration}; batch norm in the BYOL heads needs at least 2 samples per batch "
                "(use batch_size >= 2 and drop_last=True)."
            )
        zero_grad, step = engine._should_step()
        engine.network.train()
        if zero_grad:
            engine.zero_grad()

        with engine.autocast():
            out = engine.network(view1, view2)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine.check_finite(loss, "BYOL loss")
        engine.backward(loss)
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)

        tau = engine.current_tau()
        stepped = engine.step_optimizers() if step else False  # the target follows real steps only (eq. 1)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)

        with torch.no_grad():
            projection = F.normalize(out["online_proj1"].detach().float(), dim=1)
            projection_std = projection.std(dim=0).mean()
        return {
            "loss": loss.detach(),
            "tau": tau,
            "lr": engine.optimizer.param_groups[0]["lr"],
            "projection_std": projection_std,
            "projection_dim": projection.shape[1],
            "optimizer_stepped": stepped,
            engine.view_keys[0]: view1,
            engine.view_keys[1]: view2,
        }


def byol_scalars(output: dict[str, Any]) -> dict[str, float]:
    """The scalars of a ``BYOLTrainer`` output, tagged for TensorBoard (``byol/loss``, ``byol/lr``, ...).

    Use as ``output_transform`` of :class:`monai.handlers.TensorBoardStatsHandler`.
    """
    return {f"byol/{k}": float(output[k]) for k in ("loss", "lr", "tau", "projection_std") if k in output}
