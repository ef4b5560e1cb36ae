"""A progress bar for long runs, attachable from a bundle's handler list."""

from __future__ import annotations

from collections.abc import Callable

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar

__all__ = ["ProgressDisplay", "loss_only"]


def loss_only(output) -> dict[str, float]:
    """``{"loss": value}`` from a trainer output (a dict, or MONAI's decollated list of dicts)."""
    if isinstance(output, list):
        output = output[0] if output else {}
    return {"loss": float(output["loss"])} if isinstance(output, dict) and "loss" in output else {}


class ProgressDisplay:
    """Ignite's tqdm ``ProgressBar`` (iterations of the epoch, elapsed and remaining time, the loss).

    MONAI workflows call ``handler.attach(engine)`` with no other argument; this wrapper keeps the
    bar's ``output_transform`` so the running loss is shown.

    Args:
        output_transform: engine output -> dict of values to show; the loss by default.
        persist: leave each epoch's finished bar on screen.
        desc: text before the bar.
        update_every: redraw every this many iterations (and at the last of each epoch). Showing the loss
            reads it from the GPU, which makes the host wait for the device: on a GPU keep this above 1.
    """

    def __init__(
        self,
        output_transform: Callable = loss_only,
        persist: bool = True,
        desc: str | None = None,
        update_every: int = 1,
    ) -> None:
        if int(update_every) < 1:
            raise ValueError(f"update_every must be a positive integer, got {update_every!r}.")
        self.output_transform = output_transform
        self.update_every = int(update_every)
        self.bar = ProgressBar(persist=persist, desc=desc)

    def _due(self, engine: Engine, iteration: int) -> bool:
        """Every ``update_every``-th iteration of an epoch, and its last."""
        epoch_length = engine.state.epoch_length or 0
        local = (iteration - 1) % epoch_length + 1 if epoch_length else iteration
        return local % self.update_every == 0 or local == epoch_length

    def attach(self, engine: Engine) -> None:  # noqa: D102
        event = Events.ITERATION_COMPLETED if self.update_every == 1 else Events.ITERATION_COMPLETED(event_filter=self._due)
        self.bar.attach(engine, output_transform=self.output_transform, event_name=event)
