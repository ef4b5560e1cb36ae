"""``OptimizerStepTrainer``: the training core the methods here share, as a MONAI ``Trainer``.

BYOL pre-training and cross-teaching segmentation differ in their iteration (two views and a momentum
target; two networks teaching each other) but need the same machinery around it: mixed precision with
a gradient scaler whose skipped steps are no steps, gradient accumulation, a count of real optimizer
steps kept in the checkpointed engine state (the schedules over steps read it), a guard that stops on
a NaN loss, optional gradient clipping before each step, a hook after each real optimizer step, and a
refusal to run an epoch of zero iterations.
A subclass writes ``_iteration`` with :meth:`autocast`, :meth:`check_finite`, :meth:`backward` and
:meth:`step_optimizers`, and puts its per-step work (BYOL's target update) in
:meth:`after_optimizer_step`. MONAI's ``GanTrainer`` is the precedent for several networks and
optimizers in one MONAI trainer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from monai.engines import Trainer
from torch.optim.optimizer import Optimizer

from monai_ssl.engines.steps import require_training_steps

__all__ = ["OptimizerStepTrainer", "clip_gradients", "out_of_memory_message", "scaled_optimizers_step"]


def out_of_memory_message(engine: Any) -> str:
    """What a run out of GPU memory tells the user: the batch size, the memory in use, what to lower."""
    device = torch.device(engine.state.device) if getattr(engine.state, "device", None) is not None else None
    batch_size = getattr(getattr(engine, "data_loader", None), "batch_size", None)
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(device).total_memory
        used = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB at peak of {total / 2**30:.1f} GiB on {device}"
    else:
        used = f"memory in use unknown on {device}"
    lower = f" (e.g. --batch_size {batch_size // 2})" if isinstance(batch_size, int) and batch_size > 2 else ""
    return (
        f"{engine.run_name} ran out of GPU memory at batch size {batch_size} ({used}). Lower --batch_size{lower}; to "
        "keep the effective batch, raise --accumulation_steps by the same factor; or turn on amp (bf16 halves "
        "activations)."
    )


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


def _gradients_finite(optimizers: Sequence[Optimizer]) -> bool:
    """Whether every gradient of ``optimizers`` is finite (one reduction, one host sync)."""
    grads = [p.grad for opt in optimizers for group in opt.param_groups for p in group["params"] if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


def clip_gradients(optimizers: Sequence[Optimizer], max_norm: float, per_parameter: bool = False) -> None:
    """Clip the gradients of every parameter of ``optimizers`` in place, by their L2 norm.

    - ``per_parameter=False``: ``torch.nn.utils.clip_grad_norm_`` over all parameters together; the
      gradients are scaled by ``max_norm / (total_norm + 1e-6)`` when the global norm exceeds ``max_norm``.
    - ``per_parameter=True``: the rule of the DINO reference code (``utils.clip_gradients``; Caron et al.
      2021, Appendix, ``--clip_grad 3.0``): each parameter tensor whose own gradient norm exceeds
      ``max_norm`` is scaled by ``max_norm / (norm + 1e-6)``; the others are left as they are.

    A non-finite gradient stays non-finite (an infinite norm gives a factor 0 and ``inf * 0`` is NaN; a
    NaN norm gives NaN), so a gradient scaler or a finite check after this still sees it. No host sync.

    Args:
        optimizers: the optimizers whose parameters' gradients are clipped (parameters without a
            gradient are skipped).
        max_norm: the largest L2 norm kept, > 0.
        per_parameter: clip each parameter tensor on its own instead of all together.
    """
    params = [p for opt in optimizers for group in opt.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return
    if not per_parameter:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    for p in params:
        norm = torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float32)
        factor = (max_norm / (norm + 1e-6)).clamp(max=1.0)
        p.grad.detach().mul_(factor.to(p.grad.dtype))


def scaled_optimizers_step(scaler: Any, optimizers: Sequence[Optimizer], unscaled: bool = False) -> bool:
    """``scaler.step`` each optimizer, then one ``scaler.update()``; return whether the step was taken.

    A ``torch.amp.GradScaler`` skips an optimizer's step when its unscaled gradients hold inf/NaN (fp16
    overflow) and then lowers its scale by ``backoff_factor`` (< 1). Such an iteration is no training
    step: the caller must neither advance step-based schedules nor move a momentum target.

    With several optimizers (one per network) the scaler alone would skip only the optimizer whose
    gradients overflowed and step the others. Networks trained together (cross-teaching) must stay in
    step, so here the gradients of all of them are unscaled first and, when any is not finite, no
    optimizer steps (the scale is still lowered by ``update()``).

    Detection for one optimizer: for ordinary optimizers the scaler calls ``optimizer.step()`` only when
    it does not skip, so a step post-hook tells, without a host sync (the scaler has already synced on its
    inf check). Optimizers that handle the scaling themselves (``_step_supports_amp_scaling``, e.g.
    ``fused=True``) are always called and skip inside; for them, and for objects without step hooks, a
    skip is recognised by the scale decreasing across ``update()`` (two ``get_scale()`` host syncs).

    With ``unscaled=True`` the caller has already called ``scaler.unscale_`` on every optimizer since the
    last ``update()`` (to clip the true gradients); the scaler remembers, per optimizer, whether their
    gradients were finite, so ``scaler.step`` still skips on an overflow and does not unscale again.
    """
    if len(optimizers) > 1:
        if not unscaled:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)
        stepped = _gradients_finite(optimizers)
        if stepped:
            for optimizer in optimizers:
                scaler.step(optimizer)
        scaler.update()
        return stepped
    observable = [
        not getattr(opt, "_step_supports_amp_scaling", False) and hasattr(opt, "register_step_post_hook")
        for opt in optimizers
    ]
    before = None if all(observable) else scaler.get_scale()
    stepped = True
    for optimizer, hooked in zip(optimizers, observable):
        if hooked:
            stepped &= _step_observed(optimizer, lambda o=optimizer: scaler.step(o))
        else:
            scaler.step(optimizer)
    scaler.update()
    if before is not None:
        stepped &= not scaler.get_scale() < before
    return stepped


class OptimizerStepTrainer(Trainer):
    """A MONAI ``Trainer`` with the step machinery every method here shares.

    - **Mixed precision.** :meth:`autocast` (``torch.autocast`` on the device, ``amp_kwargs``), and the
      gradient scaler MONAI's ``Trainer`` makes under amp on CUDA: :meth:`backward` scales the loss,
      :meth:`step_optimizers` steps every optimizer through it and reports a skipped step as no step.
    - **Gradient accumulation.** With ``accumulation_steps`` = k the gradients are zeroed at the first
      iteration of each window of k and the optimizers step at its last (and once more at the end of an
      epoch for a remainder); :meth:`backward` divides the loss by k.
    - **Optimizer steps in the state.** ``engine.state.optimizer_steps`` counts the real steps; it is in
      ``state_dict_user_keys``, so the trainer's checkpoint entry carries it and a resumed run continues
      step-based schedules.
    - **After each real step** :meth:`after_optimizer_step` runs (before the count advances), where BYOL
      moves its target and cross-teaching advances its ramp.
    - **NaN guard.** :meth:`check_finite` stops the run with a ``FloatingPointError`` naming the epoch and
      iteration instead of training on. With ``finite_check_interval`` = N > 1 the check runs on the device
      (the first non-finite iteration and its value are kept there) and the host reads it every N iterations
      and at the end of each epoch, so a GPU is not made to wait for the host at every step; a NaN run still
      stops within N iterations, before the epoch's checkpoint, with the same message.
    - **Gradient clipping.** With ``max_grad_norm`` the gradients are clipped before each optimizer step, by
      their global norm or per parameter tensor (:func:`clip_gradients`); under fp16 amp they are unscaled
      first, and an overflow still skips the step.
    - **Out of GPU memory.** :meth:`run` turns ``torch.OutOfMemoryError`` into one naming the batch size, the
      memory in use and what to lower.
    - **No empty runs.** :meth:`run` refuses an epoch of zero iterations
      (:func:`~monai_ssl.engines.require_training_steps`).

    Args:
        device: where to train.
        max_epochs: epochs to run.
        train_data_loader: the training data.
        optimizers: the optimizer, or one per network.
        run_name: the run's name in messages, e.g. ``"BYOL pre-training"``.
        epoch_length: iterations per epoch; ``len(train_data_loader)`` when not given.
        non_blocking: non-blocking host-to-device copies.
        prepare_batch: MONAI's ``prepare_batch`` callable.
        train_handlers: MONAI/Ignite handlers with ``attach(engine)``.
        amp: mixed precision (autocast and gradient scaling on CUDA; bfloat16 autocast on CPU).
        accumulation_steps: mini-batches per optimizer step.
        optim_set_to_none: ``optimizer.zero_grad(set_to_none=...)``.
        amp_kwargs: arguments of ``torch.autocast``.
        to_kwargs: extra arguments of ``Tensor.to`` for the batch.
        decollate: MONAI's ``decollate`` of the iteration output.
        finite_check_interval: read the NaN guard every this many iterations (1: at every iteration).
        max_grad_norm: clip the gradients to this L2 norm before each optimizer step (after unscaling them
            under fp16 amp); None: no clipping (:func:`clip_gradients`).
        grad_norm_per_parameter: clip each parameter tensor's gradient on its own (DINO's rule) instead of
            the global norm of all of them.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        optimizers: Optimizer | Sequence[Optimizer],
        run_name: str = "training",
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable | None = None,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        accumulation_steps: int = 1,
        optim_set_to_none: bool = False,
        amp_kwargs: dict | None = None,
        to_kwargs: dict | None = None,
        decollate: bool = False,
        finite_check_interval: int = 1,
        max_grad_norm: float | None = None,
        grad_norm_per_parameter: bool = False,
    ) -> None:
        if accumulation_steps < 1:
            raise ValueError(f"`accumulation_steps` must be a positive integer, got {accumulation_steps!r}.")
        number = isinstance(max_grad_norm, (int, float)) and not isinstance(max_grad_norm, bool)
        if max_grad_norm is not None and not (number and max_grad_norm > 0):
            raise ValueError(f"`max_grad_norm` must be None (no clipping) or a number > 0, got {max_grad_norm!r}.")
        kwargs = {} if prepare_batch is None else {"prepare_batch": prepare_batch}
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            handlers=train_handlers,
            amp=amp,
            decollate=decollate,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
            **kwargs,
        )
        self.optimizers = (optimizers,) if isinstance(optimizers, Optimizer) else tuple(optimizers)
        if not self.optimizers:
            raise ValueError("OptimizerStepTrainer needs at least one optimizer.")
        self.run_name = run_name
        self.accumulation_steps = accumulation_steps
        self.optim_set_to_none = optim_set_to_none
        if int(finite_check_interval) < 1:
            raise ValueError(f"`finite_check_interval` must be a positive integer, got {finite_check_interval!r}.")
        self.finite_check_interval = int(finite_check_interval)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.grad_norm_per_parameter = bool(grad_norm_per_parameter)
        self._nonfinite: tuple[torch.Tensor, torch.Tensor, str] | None = None
        self.state.optimizer_steps = 0
        self.state_dict_user_keys.append("optimizer_steps")

    def run(self) -> None:  # type: ignore[override]
        """Run the training.

        Raises:
            ValueError: an epoch would have no iteration (fewer items than one batch with ``drop_last``, or
                none): MONAI's ``Workflow.run`` would only warn and return, and the run would look successful.
        """
        require_training_steps(self.data_loader, self.run_name)
        try:
            super().run()
        except torch.OutOfMemoryError as err:
            raise torch.OutOfMemoryError(out_of_memory_message(self)) from err

    @property
    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch: ``ceil(epoch_length / accumulation_steps)``."""
        return math.ceil(self.state.epoch_length / self.accumulation_steps)

    @property
    def total_optimizer_steps(self) -> int:
        """Optimizer steps of the whole run (the length of a schedule over steps)."""
        return self.optimizer_steps_per_epoch * int(self.state.max_epochs)

    @property
    def gradient_scaling(self) -> bool:
        """Whether the loss goes through an enabled gradient scaler (fp16 amp on CUDA; not bf16 on the CPU)."""
        scaler = self.scaler
        if self.amp_kwargs.get("dtype") == torch.bfloat16:  # bf16 has fp32's exponent range: nothing to scale
            return False
        return bool(self.amp and scaler is not None and getattr(scaler, "is_enabled", lambda: True)())

    def _should_step(self) -> tuple[bool, bool]:
        """(zero the gradients before this iteration, step the optimizers after it)."""
        acc = self.accumulation_steps
        if acc == 1:
            return True, True
        local = (self.state.iteration - 1) % self.state.epoch_length
        return local % acc == 0, (local + 1) % acc == 0 or (local + 1) == self.state.epoch_length

    def zero_grad(self) -> None:
        """Zero the gradients of every optimizer."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=self.optim_set_to_none)

    def autocast(self) -> torch.autocast:
        """``torch.autocast`` on the training device, enabled with ``amp``."""
        return torch.autocast(torch.device(self.state.device).type, enabled=self.amp, **self.amp_kwargs)

    def check_finite(self, loss: torch.Tensor, what: str = "loss") -> None:
        """Stop the run when ``loss`` is NaN/inf.

        With ``finite_check_interval`` = 1 the host reads the check at once (one sync per iteration). Otherwise
        the first non-finite iteration is recorded on the device and read by :meth:`raise_if_nonfinite` every
        ``finite_check_interval`` iterations and at the last iteration of each epoch.

        Raises:
            FloatingPointError: naming ``what``, the value, the epoch and the iteration.
        """
        if self.finite_check_interval == 1:
            if not torch.isfinite(loss):
                self._raise_nonfinite(what, loss.item(), self.state.iteration)
            return
        loss = loss.detach().float()
        if self._nonfinite is None:
            self._nonfinite = (torch.zeros((), dtype=torch.long, device=loss.device), torch.zeros_like(loss), what)
        first, value, _ = self._nonfinite
        new = ~torch.isfinite(loss) & (first == 0)
        self._nonfinite = (torch.where(new, self.state.iteration, first), torch.where(new, loss, value), what)
        local = (self.state.iteration - 1) % self.state.epoch_length + 1
        if self.state.iteration % self.finite_check_interval == 0 or local == self.state.epoch_length:
            self.raise_if_nonfinite()

    def raise_if_nonfinite(self) -> None:
        """Read the device-side NaN guard (one host sync) and stop when a loss was not finite.

        Raises:
            FloatingPointError: naming the first non-finite iteration since the run started.
        """
        if self._nonfinite is None:
            return
        first, value, what = self._nonfinite
        iteration = int(first)
        if iteration:
            self._raise_nonfinite(what, float(value), iteration)

    def _raise_nonfinite(self, what: str, value: float, iteration: int) -> None:
        epoch = (iteration - 1) // max(1, self.state.epoch_length or 1) + 1
        checked = "" if self.finite_check_interval == 1 else f" (read every {self.finite_check_interval} iterations)"
        raise FloatingPointError(
            f"{self.run_name}: {what} is {value} at epoch {epoch}, iteration {iteration}{checked}; stopping instead of "
            "training on. Lower the learning rate, check the input intensities, or disable amp."
        )

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss / accumulation_steps``, through the gradient scaler under amp."""
        scaled = loss / self.accumulation_steps
        if self.gradient_scaling:
            self.scaler.scale(scaled).backward()
        else:
            scaled.backward()

    def step_optimizers(self) -> bool:
        """Clip the gradients (with ``max_grad_norm``), step every optimizer; on a real step run
        :meth:`after_optimizer_step` and count it.

        Under fp16 amp with clipping, every optimizer's gradients are unscaled (``scaler.unscale_``) before
        they are clipped, so the norm is that of the true gradients; the scaler has recorded an overflow by
        then and still skips the step.

        Returns:
            False when the gradient scaler skipped the step (inf/NaN gradients under fp16): then nothing
            else happens.
        """
        max_norm = self.max_grad_norm
        if self.gradient_scaling:
            if max_norm is not None:
                for optimizer in self.optimizers:
                    self.scaler.unscale_(optimizer)
                clip_gradients(self.optimizers, max_norm, self.grad_norm_per_parameter)
            stepped = scaled_optimizers_step(self.scaler, self.optimizers, unscaled=max_norm is not None)
        else:
            if max_norm is not None:
                clip_gradients(self.optimizers, max_norm, self.grad_norm_per_parameter)
            for optimizer in self.optimizers:
                optimizer.step()
            stepped = True
        if stepped:
            self.after_optimizer_step()
            self.state.optimizer_steps += 1
        return stepped

    def after_optimizer_step(self) -> None:
        """Called after each real optimizer step, before ``state.optimizer_steps`` advances (a no-op here)."""
