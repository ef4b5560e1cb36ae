"""A progress bar for long runs, attachable from a bundle's handler list."""

from __future__ import annotations

from collections.abc import Callable

from ignite.engine import Engine
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
    """

    def __init__(self, output_transform: Callable = loss_only, persist: bool = True, desc: str | None = None) -> None:
        self.output_transform = output_transform
        self.bar = ProgressBar(persist=persist, desc=desc)

    def attach(self, engine: Engine) -> None:  # noqa: D102
        self.bar.attach(engine, output_transform=self.output_transform)
