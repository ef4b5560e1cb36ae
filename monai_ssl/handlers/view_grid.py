"""TensorBoard picture of the augmented BYOL views of the first batch of every epoch."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch.utils.tensorboard import SummaryWriter

from monai_ssl.visualize.plots import image_grid

__all__ = ["ViewGridHandler"]


def _to_2d_batch(views: Any, key: str) -> torch.Tensor:
    """``(B, C, H, W)`` float CPU tensor with 1 or 3 channels; volumes give their middle slice."""
    if not isinstance(views, torch.Tensor):
        raise TypeError(f"ViewGridHandler: view '{key}' must be a tensor, got {type(views).__name__}.")
    x = views.detach().as_subclass(torch.Tensor)
    if x.ndim == 5:  # (B, C, S, H, W): middle slice along S
        x = x[:, :, x.shape[2] // 2]
    if x.ndim != 4:
        raise ValueError(
            f"ViewGridHandler: view '{key}' must have shape (B, C, H, W) or (B, C, S, H, W), got {tuple(x.shape)}."
        )
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    return x.float().cpu()


class ViewGridHandler:
    """Log a grid of the two augmented views of the first batch of each epoch to TensorBoard.

    Row ``k`` of the grid holds view ``view_keys[k]`` of samples ``0 .. n-1`` (``n <= max_samples``), so
    the views of one sample are stacked vertically. Each tile is min-max normalised on its own. 3-D
    views ``(B, C, S, H, W)`` show their middle slice ``S // 2``; images whose channel count is not 1
    or 3 show their first channel. The picture is written with ``global_step=engine.state.epoch``.

    Example::

        ViewGridHandler(log_dir="./runs").attach(trainer)
    """

    def __init__(
        self,
        summary_writer: SummaryWriter | None = None,
        log_dir: str | os.PathLike = "./runs",
        view_keys: Sequence[str] = ("view1", "view2"),
        max_samples: int = 8,
        tag: str = "byol/views",
        output_transform: Callable[[Any], Any] = lambda out: out,
    ) -> None:
        """
        Args:
            summary_writer: TensorBoard writer to use; ``None`` creates one on ``log_dir``, closed at
                ``Events.COMPLETED`` (a writer passed in is never closed here).
            log_dir: folder of the writer created when ``summary_writer`` is ``None``.
            view_keys: keys of the views in the transformed output, one grid row each.
            max_samples: largest number of samples (grid columns) shown.
            tag: TensorBoard image tag.
            output_transform: maps ``engine.state.output`` to a dict holding ``view_keys`` (a list of
                per-sample dicts is stacked along a new batch dimension).
        """
        if max_samples < 1:
            raise ValueError(f"`max_samples` must be >= 1, got {max_samples}.")
        if not view_keys:
            raise ValueError("`view_keys` must name at least one view.")
        self._internal_writer = summary_writer is None
        self._writer = SummaryWriter(log_dir=str(log_dir)) if summary_writer is None else summary_writer
        self.view_keys = tuple(view_keys)
        self.max_samples = max_samples
        self.tag = tag
        self.output_transform = output_transform
        self._pending = False

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine``.

        Args:
            engine: Ignite Engine, typically the BYOL trainer.
        """
        if not engine.has_event_handler(self.epoch_started, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        if not engine.has_event_handler(self, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if self._internal_writer and not engine.has_event_handler(self.close, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self.close)

    def epoch_started(self, engine: Engine) -> None:
        """Arm the handler so that the next completed iteration (the epoch's first) is drawn.

        Args:
            engine: Ignite Engine (unused).
        """
        self._pending = True

    def __call__(self, engine: Engine) -> None:
        """Write the grid if this is the first iteration of the epoch.

        Args:
            engine: Ignite Engine.
        """
        if not self._pending:
            return
        self._pending = False
        grid = self.make_grid(self.output_transform(engine.state.output))
        self._writer.add_image(self.tag, grid, global_step=engine.state.epoch)
        self._writer.flush()

    def make_grid(self, output: Any) -> torch.Tensor:
        """Build the ``(3, H', W')`` grid from a (transformed) engine output.

        Args:
            output: dict holding ``view_keys``, or a list of per-sample such dicts.

        Returns:
            Float tensor in ``[0, 1]``, one row per view.
        """
        rows = []
        for key in self.view_keys:
            if isinstance(output, list) and output and all(isinstance(o, dict) for o in output):
                if key not in output[0]:
                    raise KeyError(f"ViewGridHandler: view key '{key}' not in output keys {sorted(output[0])}.")
                value = torch.stack([torch.as_tensor(o[key]) for o in output])
            elif isinstance(output, dict):
                if key not in output:
                    raise KeyError(f"ViewGridHandler: view key '{key}' not in output keys {sorted(output)}.")
                value = output[key]
            else:
                raise TypeError(
                    f"ViewGridHandler: expected a dict with keys {self.view_keys}, got {type(output).__name__}; "
                    "set `output_transform`."
                )
            rows.append(_to_2d_batch(value, key))
        n = min(self.max_samples, *(r.shape[0] for r in rows))
        shapes = {tuple(r.shape[2:]) for r in rows}
        if len(shapes) > 1:
            raise ValueError(f"ViewGridHandler: views must share their spatial size, got {sorted(shapes)}.")
        # tiles are normalised one by one, so mixed 1-/3-channel views can be drawn as RGB together
        tiles = torch.cat([r[:n].expand(-1, 3, -1, -1) if r.shape[1] == 1 else r[:n] for r in rows])
        return image_grid(tiles, nrow=n)

    def close(self, engine: Engine | None = None) -> None:
        """Close the writer created by this handler.

        Args:
            engine: Ignite Engine (unused).
        """
        if self._internal_writer:
            self._writer.close()
