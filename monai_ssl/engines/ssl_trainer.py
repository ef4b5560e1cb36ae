"""``SelfSupervisedTrainer``: one trainer for every self-supervised method (BYOL, DINO, CASS)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from torch import nn
from torch.optim.optimizer import Optimizer

from monai_ssl.engines.step_trainer import OptimizerStepTrainer
from monai_ssl.methods.base import MethodState, SelfSupervisedMethod

__all__ = ["SelfSupervisedTrainer", "method_scalars", "prepare_view_list"]


def prepare_view_list(
    batchdata: dict[Hashable, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    view_keys: Sequence[str] = ("view1", "view2"),
    **kwargs: Any,
) -> list[torch.Tensor]:
    """The views of a batch under ``view_keys``, in that order, moved to ``device``.

    Raises:
        KeyError: a view key is missing from the batch (naming it and the keys that are there).
    """
    missing = [key for key in view_keys if key not in batchdata]
    if missing:
        raise KeyError(
            f"the batch has no {missing} (keys present: {sorted(map(str, batchdata))}); the transforms must produce "
            f"every view the method reads, e.g. monai_ssl.transforms.MultiCropViewsd with keys {tuple(view_keys)}."
        )
    return [torch.as_tensor(batchdata[k]).to(device=device, non_blocking=non_blocking, **kwargs) for k in view_keys]


class SelfSupervisedTrainer(OptimizerStepTrainer):
    """Self-supervised pre-training with any :class:`~monai_ssl.methods.SelfSupervisedMethod`, as a MONAI trainer.

    One iteration, whatever the method: take the method's views of the batch (``prepare_batch``), compute
    ``method.loss`` under autocast, stop on a non-finite loss, back-propagate (divided by the accumulation
    steps, through the gradient scaler under fp16 amp), and at the last iteration of an accumulation window
    let the method change the gradients (``method.before_optimizer_step``: DINO's frozen last layer) and step
    every optimizer. After each real optimizer step the method moves its moving-average target with the rate
    of its schedule at that step (:meth:`after_optimizer_step`); a step the gradient scaler skips moves
    nothing and is not counted. The step machinery, the count ``engine.state.optimizer_steps`` (in the
    checkpointed state, so a resumed run continues the schedules) and the NaN guard are
    :class:`~monai_ssl.engines.OptimizerStepTrainer`'s. With :class:`~monai_ssl.methods.BYOLMethod` it computes
    what a plain PyTorch BYOL loop computes, value for value (a test); :class:`~monai_ssl.engines.BYOLTrainer`
    is this trainer with BYOL's arguments.

    ``engine.state.output`` after each iteration is a dict: ``loss`` (detached), ``method`` (its name),
    ``lr`` (first optimizer, first group), ``optimizer_stepped``, the method's own values (e.g. BYOL's
    ``tau`` and ``projection_std``, DINO's ``teacher_entropy`` and ``kl``), and the views under their keys for
    image logging. :func:`method_scalars` turns it into TensorBoard scalars.

    Args:
        device: where to train.
        max_epochs: epochs to run.
        train_data_loader: yields dicts with the method's views (``method.view_keys``).
        method: the self-supervised method.
        network: the method's network (e.g. :class:`~monai_ssl.networks.BYOL`), possibly wrapped in
            ``DistributedDataParallel``.
        optimizer: the optimizer, or one per parameter group of the method
            (:func:`~monai_ssl.methods.method_optimizers`; CASS: one per member).
        prepare_batch: ``(batch, device, non_blocking, view_keys=..., **kwargs) -> views``.
        epoch_length, non_blocking, train_handlers, amp, accumulation_steps, optim_set_to_none, amp_kwargs,
            to_kwargs, finite_check_interval: as in :class:`~monai_ssl.engines.OptimizerStepTrainer`.
        channels_last: give 4D views to the network in ``torch.channels_last`` memory format.
        compile: compile the network in place with ``torch.compile`` (``nn.Module.compile``).
        max_grad_norm, grad_norm_per_parameter: gradient clipping before each optimizer step, as in
            :class:`~monai_ssl.engines.OptimizerStepTrainer` (DINO: 3.0 per parameter).
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        method: SelfSupervisedMethod,
        network: nn.Module,
        optimizer: Optimizer | Sequence[Optimizer],
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = prepare_view_list,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        accumulation_steps: int = 1,
        optim_set_to_none: bool = False,
        amp_kwargs: dict | None = None,
        to_kwargs: dict | None = None,
        finite_check_interval: int = 1,
        channels_last: bool = False,
        compile: bool = False,
        max_grad_norm: float | None = None,
        grad_norm_per_parameter: bool = False,
    ) -> None:
        if not isinstance(method, SelfSupervisedMethod):
            raise TypeError(f"SelfSupervisedTrainer needs a SelfSupervisedMethod, got {type(method).__name__}.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            optimizers=optimizer,
            run_name=f"{method.name} pre-training",
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
            max_grad_norm=max_grad_norm,
            grad_norm_per_parameter=grad_norm_per_parameter,
        )
        if compile:
            network.compile()
        for module in method.state_modules().values():
            module.to(device)
        self.method = method
        self.network = network
        self.channels_last = channels_last

    def method_state(self) -> MethodState:
        """Where the run stands, for the method's loss and schedules."""
        return MethodState(
            epoch=int(self.state.epoch) - 1,
            iteration=int(self.state.iteration),
            optimizer_steps=int(self.state.optimizer_steps),
            total_optimizer_steps=self.total_optimizer_steps,
        )

    def after_optimizer_step(self) -> None:
        """Let the method move its target with its rate at this step (before the step count advances)."""
        self.method.after_optimizer_step(self.network, self.state.optimizer_steps, self.total_optimizer_steps)

    def _iteration(self, engine: SelfSupervisedTrainer, batchdata: dict[Hashable, Any]) -> dict[str, Any]:
        """One step of any method: views, loss, NaN guard, backward, gradient hook, optimizer step, target update."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        method = engine.method
        views = list(
            engine.prepare_batch(
                batchdata, engine.state.device, engine.non_blocking, view_keys=method.view_keys, **engine.to_kwargs
            )
        )
        if engine.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for v in views]
        zero_grad, step = engine._should_step()
        engine.network.train()
        if zero_grad:
            engine.zero_grad()
        state = engine.method_state()

        with engine.autocast():
            loss, outputs = method.loss(engine.network, views, state)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine.check_finite(loss, f"{method.name} loss")
        engine.backward(loss)
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)

        stepped = False
        if step:
            method.before_optimizer_step(engine.network, state.epoch)
            stepped = engine.step_optimizers()  # the target follows real steps only
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return {
            "loss": loss.detach(),
            "method": method.name,
            "lr": engine.optimizers[0].param_groups[0]["lr"],
            "optimizer_stepped": stepped,
            **outputs,
            **dict(zip(method.view_keys, views)),
        }


def method_scalars(output: dict[str, Any]) -> dict[str, float]:
    """The float scalars of a :class:`SelfSupervisedTrainer` output, tagged ``<method>/<name>`` for TensorBoard.

    Floats and one-element floating tensors are kept (``byol/loss``, ``byol/tau``, ``dino/kl``...); integers,
    flags and images are left out. Use as ``output_transform`` of :class:`monai.handlers.TensorBoardStatsHandler`.
    """
    method = output.get("method", "ssl")
    scalars = {}
    for key, value in output.items():
        if isinstance(value, float) or (
            isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()
        ):
            scalars[f"{method}/{key}"] = float(value)
    return scalars
