"""``OptimizerSchedules``: learning-rate warm-up and cosine decay, and a cosine weight decay, over optimizer steps.

The schedules of DINO (Caron et al. 2021, Sec. 4 and Appendix: "the learning rate is linearly ramped up
during the first 10 epochs ... decayed with a cosine schedule", weight decay 0.04 -> 0.4 on a cosine) and of
BYOL (Grill et al. 2020, Sec. 3.2: warm-up, then cosine decay of the learning rate), counted in real
optimizer steps of an :class:`~monai_ssl.engines.OptimizerStepTrainer` so that gradient accumulation,
skipped fp16 steps and a resumed run all keep the schedule in place.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ignite.engine import Engine, Events
from torch.optim.optimizer import Optimizer

from monai_ssl.utils.schedules import cosine_schedule

__all__ = ["OptimizerSchedules"]


def _non_negative(value: float, name: str) -> float:
    """``value`` as a float when it is a finite number >= 0; else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return float(value)


class OptimizerSchedules:
    """Set every optimizer's learning rate (and weight decay) at each iteration from the optimizer-step count.

    At ``Events.ITERATION_STARTED``, with ``s = engine.state.optimizer_steps`` (real optimizer steps done so
    far, kept in the trainer's checkpointed state) and ``K = engine.total_optimizer_steps`` (the run's optimizer
    steps), every parameter group of every optimizer in ``engine.optimizers`` gets:

    - ``lr``: :func:`~monai_ssl.utils.schedules.cosine_schedule` at step ``s``: a linear warm-up from
      ``warmup_start_learning_rate`` to ``learning_rate`` over the first ``W = round(warmup_epochs * K /
      max_epochs)`` steps, then a half cosine from ``learning_rate`` to ``final_learning_rate`` over the other
      ``K - W`` steps (the DINO reference code's ``utils.cosine_scheduler``); from step ``K`` on, the final value.
    - ``weight_decay`` (when ``weight_decay`` is given): a cosine from ``weight_decay`` to ``final_weight_decay``
      over the ``K`` steps, without warm-up; groups marked ``"fixed_weight_decay": True`` (biases and norm
      parameters, :func:`~monai_ssl.methods.method_optimizers`) are left as they are.

    The iterations of one accumulation window share one value (the count moves only on a real step). A resumed
    run restores ``optimizer_steps`` with the trainer's state and so continues the schedule; the handler keeps
    no state of its own. After setting, ``engine.state.learning_rate`` and ``engine.state.weight_decay`` hold the
    values (floats) for logging; without a weight-decay schedule the latter is the first optimizer's first
    regularised group's weight decay.

    Args:
        learning_rate: the learning rate at the end of the warm-up (the start of the cosine).
        final_learning_rate: the learning rate the cosine reaches at the end of the run.
        warmup_epochs: epochs of linear warm-up (may be fractional; counted in optimizer steps).
        warmup_start_learning_rate: the learning rate at the first step of the warm-up.
        weight_decay: the weight decay at the first step; None: the optimizers' weight decay is not changed.
        final_weight_decay: the weight decay at the end of the run; None: ``weight_decay`` (constant).

    Raises:
        ValueError: a negative or non-finite rate or weight decay, ``warmup_epochs < 0``, or
            ``final_weight_decay`` without ``weight_decay`` (each naming the argument); when the run starts, a
            warm-up as long as the whole run.
        TypeError: at :meth:`attach`, an engine without ``optimizers`` and ``total_optimizer_steps``.

    Example:
        >>> # DINO: lr 5e-4 * batch / 256 after 10 warm-up epochs, cosine to 1e-6; weight decay 0.04 -> 0.4
        >>> # OptimizerSchedules(5e-4, final_learning_rate=1e-6, warmup_epochs=10, weight_decay=0.04,
        >>> #                    final_weight_decay=0.4).attach(trainer)
    """

    def __init__(
        self,
        learning_rate: float,
        final_learning_rate: float = 0.0,
        warmup_epochs: float = 0.0,
        warmup_start_learning_rate: float = 0.0,
        weight_decay: float | None = None,
        final_weight_decay: float | None = None,
    ) -> None:
        self.learning_rate = _non_negative(learning_rate, "learning_rate")
        self.final_learning_rate = _non_negative(final_learning_rate, "final_learning_rate")
        self.warmup_epochs = _non_negative(warmup_epochs, "warmup_epochs")
        self.warmup_start_learning_rate = _non_negative(warmup_start_learning_rate, "warmup_start_learning_rate")
        if weight_decay is None and final_weight_decay is not None:
            raise ValueError(
                f"`final_weight_decay` ({final_weight_decay!r}) needs `weight_decay` (the value at the start of the "
                "run); set both, or neither to leave the optimizers' weight decay alone."
            )
        self.weight_decay = None if weight_decay is None else _non_negative(weight_decay, "weight_decay")
        final = weight_decay if final_weight_decay is None else final_weight_decay
        self.final_weight_decay = None if final is None else _non_negative(final, "final_weight_decay")

    def attach(self, engine: Engine) -> None:
        """Set the values at each ``ITERATION_STARTED`` of ``engine``; check the warm-up fits when it starts.

        Raises:
            TypeError: ``engine`` has no ``optimizers`` list and ``total_optimizer_steps`` (not an
                :class:`~monai_ssl.engines.OptimizerStepTrainer`).
        """
        if not hasattr(type(engine), "total_optimizer_steps"):  # `optimizers` may be set after the handlers attach
            raise TypeError(
                f"OptimizerSchedules needs an OptimizerStepTrainer (with `optimizers` and `total_optimizer_steps`), "
                f"got {type(engine).__name__}."
            )
        engine.add_event_handler(Events.STARTED, self._check_run)
        engine.add_event_handler(Events.ITERATION_STARTED, self)

    def warmup_steps(self, engine: Engine) -> int:
        """Optimizer steps of the warm-up: ``round(warmup_epochs * total_optimizer_steps / max_epochs)``, at most
        half the run (a short run, such as a demo of a recipe made for 100 epochs, still reaches its peak rate)."""
        total = engine.total_optimizer_steps
        steps_per_epoch = total / int(engine.state.max_epochs)
        return min(int(round(self.warmup_epochs * steps_per_epoch)), total // 2)

    def _check_run(self, engine: Engine) -> None:
        if not hasattr(engine, "optimizers"):
            raise TypeError(f"OptimizerSchedules needs an OptimizerStepTrainer (with `optimizers`), got {type(engine).__name__}.")
        total = engine.total_optimizer_steps
        asked = int(round(self.warmup_epochs * total / int(engine.state.max_epochs)))
        if asked > self.warmup_steps(engine):
            logging.getLogger("monai_ssl").warning(
                f"`warmup_epochs` ({self.warmup_epochs:g}) is longer than half of this run ({engine.state.max_epochs} "
                f"epochs, {total} optimizer steps): the learning rate warms up over the first {total // 2} steps instead."
            )

    def values(self, step: int, total_steps: int, warmup_steps: int) -> tuple[float, float | None]:
        """(learning rate, weight decay or None) at optimizer step ``step`` of a run of ``total_steps``."""
        lr = cosine_schedule(
            self.learning_rate,
            self.final_learning_rate,
            total_steps,
            warmup_steps,
            self.warmup_start_learning_rate,
            step=step,
        )
        if self.weight_decay is None or self.final_weight_decay is None:
            return lr, None
        return lr, cosine_schedule(self.weight_decay, self.final_weight_decay, total_steps, step=step)

    def __call__(self, engine: Engine) -> None:
        """Set ``lr`` (and ``weight_decay``) of every parameter group for the coming optimizer step."""
        total = engine.total_optimizer_steps
        lr, weight_decay = self.values(int(engine.state.optimizer_steps), total, self.warmup_steps(engine))
        optimizers: list[Optimizer] = list(engine.optimizers)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr
                if weight_decay is not None and not group.get("fixed_weight_decay", False):
                    group["weight_decay"] = weight_decay
        engine.state.learning_rate = lr
        engine.state.weight_decay = self._reported_weight_decay(optimizers, weight_decay)

    @staticmethod
    def _reported_weight_decay(optimizers: list[Optimizer], scheduled: float | None) -> float:
        """The scheduled weight decay, else the first regularised group's (0.0 when there is none)."""
        if scheduled is not None:
            return scheduled
        groups: list[dict[str, Any]] = [g for opt in optimizers for g in opt.param_groups]
        regularised = [g for g in groups if not g.get("fixed_weight_decay", False)] or groups
        return float(regularised[0].get("weight_decay", 0.0)) if regularised else 0.0
