"""``BYOLTrainer``: the BYOL pre-training loop as a MONAI ``Trainer`` (an Ignite engine)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from torch import nn
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai_ssl.engines.steps import require_training_steps
from monai_ssl.losses import BYOLLoss
from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.networks.momentum import cosine_momentum

__all__ = ["BYOLTrainer", "byol_scalars", "prepare_views", "scaled_optimizer_step"]


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


def _step_observed(optimizer: Optimizer, step: Callable[[], Any]) -> bool:
    """Run ``step()`` and tell whether it called ``optimizer.step()``, with a step post-hook (no host sync)."""
    called = False

    def _mark(*_: Any) -> None:
        nonlocal called
        called = True

    handle = optimizer.register_step_post_hook(_mark)
    try:
        step()
    finally:
        handle.remove()
    return called


def scaled_optimizer_step(scaler: Any, optimizer: Optimizer) -> bool:
    """``scaler.step(optimizer)`` then ``scaler.update()``; return whether the optimizer really stepped.

    A ``torch.amp.GradScaler`` skips the step when the unscaled gradients hold inf/NaN (fp16 overflow)
    and then lowers its scale by ``backoff_factor`` (< 1). Such an iteration is no step of Algorithm 1:
    the caller must neither move the BYOL target (eq. 1) nor count it in the ``tau`` schedule.

    Detection: for ordinary optimizers the scaler calls ``optimizer.step()`` only when it does not skip,
    so a step post-hook tells, without a host sync (the scaler has already synced on its inf check).
    Optimizers that handle the scaling themselves (``_step_supports_amp_scaling``, e.g. ``fused=True``)
    are always called and skip inside, so for them, and for objects without step hooks, a skip is
    recognised by the scale decreasing across ``update()`` (two ``get_scale()`` host syncs).
    """
    fused = getattr(optimizer, "_step_supports_amp_scaling", False)
    if not fused and hasattr(optimizer, "register_step_post_hook"):
        stepped = _step_observed(optimizer, lambda: scaler.step(optimizer))
        scaler.update()
        return stepped
    before = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return not scaler.get_scale() < before


class BYOLTrainer(Trainer):
    """BYOL pre-training (Grill et al., NeurIPS 2020, Algorithm 1) as a MONAI trainer.

    Each iteration takes the two views of a batch, computes the symmetric loss of the online
    predictions against the target projections (eq. 2), back-propagates through the online network
    only, steps the optimizer and then moves the target towards the online network with
    ``tau`` from the cosine schedule over optimizer steps (eq. 1 and Sec. 3.2). With gradient
    accumulation the optimizer (and so the target and ``tau``) steps once per
    ``accumulation_steps`` iterations, and once more at the end of an epoch for a remainder.

    The number of optimizer steps done is ``engine.state.optimizer_steps``; it is part of the
    trainer's ``state_dict`` so a run resumed from a checkpoint continues the ``tau`` schedule.
    Under amp with a gradient scaler, a step the scaler skips (inf/NaN gradients) is no step: the
    target does not move and ``optimizer_steps`` does not advance (:func:`scaled_optimizer_step`).

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
        epoch_length: iterations per epoch; ``len(train_data_loader)`` when not given.
        non_blocking: non-blocking host-to-device copies.
        prepare_batch: ``(batch, device, non_blocking, **kwargs) -> (view1, view2)``.
        train_handlers: MONAI/Ignite handlers with ``attach(engine)``.
        amp: mixed precision (autocast and gradient scaling on CUDA; bfloat16 autocast on CPU).
        accumulation_steps: mini-batches per optimizer step.
        optim_set_to_none: ``optimizer.zero_grad(set_to_none=...)``.
        amp_kwargs: arguments of ``torch.autocast``.
        to_kwargs: extra arguments of ``Tensor.to`` for the views.
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
    ) -> None:
        if accumulation_steps < 1:
            raise ValueError(f"`accumulation_steps` must be a positive integer, got {accumulation_steps!r}.")
        if not 0.0 <= tau_base <= tau_final <= 1.0:
            raise ValueError(f"need 0 <= tau_base <= tau_final <= 1, got tau_base={tau_base}, tau_final={tau_final}.")
        if not hasattr(unwrap_parallel(network), "update_target"):
            raise TypeError(f"BYOLTrainer needs a BYOL network with `update_target(tau)`, got {type(network).__name__}.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            handlers=train_handlers,
            amp=amp,
            decollate=False,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        self.network = network
        self.optimizer = optimizer
        self.loss_function = loss_function if loss_function is not None else BYOLLoss()
        self.tau_base = tau_base
        self.tau_final = tau_final
        self.view_keys = tuple(view_keys)
        self.accumulation_steps = accumulation_steps
        self.optim_set_to_none = optim_set_to_none
        self.state.optimizer_steps = 0
        self.state_dict_user_keys.append("optimizer_steps")

    def run(self) -> None:  # type: ignore[override]
        """Run the pre-training.

        Raises:
            ValueError: an epoch would have no iteration (fewer items than one batch with ``drop_last``, or
                none): MONAI's ``Workflow.run`` would only warn and return, and the run would look successful.
        """
        require_training_steps(self.data_loader, "BYOL pre-training")
        super().run()

    @property
    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch: ``ceil(epoch_length / accumulation_steps)``."""
        return math.ceil(self.state.epoch_length / self.accumulation_steps)

    @property
    def total_optimizer_steps(self) -> int:
        """Optimizer steps of the whole run, the ``K`` of the cosine ``tau`` schedule."""
        return self.optimizer_steps_per_epoch * int(self.state.max_epochs)

    def current_tau(self) -> float:
        """``tau`` for the next momentum update."""
        return cosine_momentum(self.state.optimizer_steps, self.total_optimizer_steps, self.tau_base, self.tau_final)

    def _should_step(self) -> tuple[bool, bool]:
        """(zero the gradients before this iteration, step the optimizer after it)."""
        acc = self.accumulation_steps
        if acc == 1:
            return True, True
        local = (self.state.iteration - 1) % self.state.epoch_length
        return local % acc == 0, (local + 1) % acc == 0 or (local + 1) == self.state.epoch_length

    def _optimizer_step(self) -> bool:
        """Step the optimizer (through the gradient scaler under amp); False when the scaler skipped it."""
        if self.scaler is not None and self.amp:
            return scaled_optimizer_step(self.scaler, self.optimizer)
        self.optimizer.step()
        return True

    def _iteration(self, engine: BYOLTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One BYOL step: loss of both views, backward, optimizer step, momentum update of the target."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        view1, view2 = engine.prepare_batch(
            batchdata, engine.state.device, engine.non_blocking, view_keys=engine.view_keys, **engine.to_kwargs
        )
        if view1.shape[0] < 2:
            raise ValueError(
                f"BYOL got a batch of {view1.shape[0]} sample in '{engine.view_keys[0]}' at iteration "
                f"{engine.state.iteration}; batch norm in the BYOL heads needs at least 2 samples per batch "
                "(use batch_size >= 2 and drop_last=True)."
            )
        zero_grad, step = engine._should_step()
        engine.network.train()
        if zero_grad:
            engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)

        with torch.autocast(torch.device(engine.state.device).type, enabled=engine.amp, **engine.amp_kwargs):
            out = engine.network(view1, view2)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"BYOL loss is {loss.item()} at epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
                "stopping instead of training on. Lower the learning rate, check the input intensities, or "
                "disable amp."
            )
        scaled = loss / engine.accumulation_steps
        if engine.scaler is not None and engine.amp:
            engine.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)

        tau = engine.current_tau()
        stepped = engine._optimizer_step() if step else False
        if stepped:  # the target follows real optimizer steps only (eq. 1), after them
            unwrap_parallel(engine.network).update_target(tau)
            engine.state.optimizer_steps += 1
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
