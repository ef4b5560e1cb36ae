"""Warn when a self-supervised method's outputs collapse to a constant (BYOL's projections, DINO's teacher, CASS's CNN)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from ignite.engine import Engine, Events

__all__ = ["CollapseMonitor"]


class CollapseMonitor:
    """Watch the spread of the L2-normalised outputs of a method and warn when it falls near 0.

    BYOL reports its online projections, DINO the teacher's probabilities, CASS its CNN's outputs, all as
    ``projection_std`` / ``projection_dim`` (see each :class:`~monai_ssl.methods.SelfSupervisedMethod`).

    A collapsed BYOL maps every input to the same vector: the standard deviation over the batch of
    the normalised projections drops to 0, while well spread projections give about
    ``1/sqrt(D)`` (solo-learn logs the same signal). The trainer puts it in its output as
    ``projection_std`` (and ``projection_dim``). This handler averages it over each epoch, stores
    the average as ``engine.state.metrics["projection_std"]`` and logs a warning when
    ``mean_std * sqrt(D) < threshold``. The sum stays on the training device until the epoch ends, so
    watching it does not make the host wait for a GPU at every iteration.

    Args:
        threshold: warn below this fraction of the ``1/sqrt(D)`` reference (0.1).
        output_transform: maps ``engine.state.output`` to ``(projection_std, projection_dim)``, or None for an
            output without them (the iteration is then not counted); the default does so.
        logger_name: logger for the warning.
        uniform_threshold: for outputs with ``entropy_ratio`` (DINO: the teacher entropy over its maximum
            ``log K``), warn when its epoch mean exceeds this (0.98): the other collapse, to the uniform output,
            which the spread misses when the outputs differ only slightly from uniform.
    """

    def __init__(
        self,
        threshold: float = 0.1,
        output_transform: Callable = lambda out: (
            (out["projection_std"], out["projection_dim"]) if "projection_std" in out else None
        ),
        logger_name: str = "monai_ssl",
        uniform_threshold: float = 0.98,
    ) -> None:
        self.threshold = threshold
        self.uniform_threshold = uniform_threshold
        self._entropy_sum: torch.Tensor | float = 0.0
        self._entropy_count = 0
        self.output_transform = output_transform
        self.logger = logging.getLogger(logger_name)
        self._sum: torch.Tensor | float = 0.0
        self._count = 0
        self._dim = 1
        self.warnings = 0

    def attach(self, engine: Engine) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0
        self._entropy_sum, self._entropy_count = 0.0, 0

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, dict) and "entropy_ratio" in output:
            ratio = output["entropy_ratio"]
            self._entropy_sum = self._entropy_sum + (ratio.detach().float() if isinstance(ratio, torch.Tensor) else float(ratio))
            self._entropy_count += 1
        values = self.output_transform(output)
        if values is None:
            return
        std, dim = values
        self._sum = self._sum + (std.detach().float() if isinstance(std, torch.Tensor) else float(std))
        self._count += 1
        self._dim = int(dim)

    def _check(self, engine: Engine) -> None:
        self._check_uniform(engine)
        if self._count == 0:
            return
        mean_std = float(self._sum) / self._count
        engine.state.metrics["projection_std"] = mean_std
        ratio = mean_std * math.sqrt(self._dim)
        if ratio < self.threshold:
            self.warnings += 1
            self.logger.warning(
                f"epoch {engine.state.epoch}: the outputs are collapsing to one vector for every image (std {mean_std:.2e}, "
                f"{ratio:.3f} of the 1/sqrt({self._dim}) reference, threshold {self.threshold}); check the "
                "augmentations, the learning rate and the target momentum."
            )

    def _check_uniform(self, engine: Engine) -> None:
        """Warn when the output distribution is near uniform (``entropy_ratio``: entropy / log K, DINO's teacher)."""
        if self._entropy_count == 0:
            return
        mean_ratio = float(self._entropy_sum) / self._entropy_count
        engine.state.metrics["entropy_ratio"] = mean_ratio
        if mean_ratio > self.uniform_threshold:
            self.warnings += 1
            self.logger.warning(
                f"epoch {engine.state.epoch}: the outputs are collapsing to the uniform distribution (entropy "
                f"{mean_ratio:.3f} of its maximum log K, threshold {self.uniform_threshold}): centering is winning over "
                "sharpening (Caron et al. 2021, Fig. 7); try a smaller output size K, a higher final teacher temperature "
                "reached by a warm-up, larger batches or a longer run."
            )
