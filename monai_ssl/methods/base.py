"""``SelfSupervisedMethod``: what one self-supervised method tells the trainer that runs it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import Optimizer

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.transforms.multi_crop import multi_crop_view_keys

__all__ = ["MethodState", "SelfSupervisedMethod", "method_optimizers"]


@dataclass(frozen=True)
class MethodState:
    """Where the run stands when a method computes its loss.

    Attributes:
        epoch: epochs completed so far, counted from 0 (Ignite's ``engine.state.epoch - 1``).
        iteration: Ignite's iteration count (from 1).
        optimizer_steps: real optimizer steps done so far (``engine.state.optimizer_steps``).
        total_optimizer_steps: optimizer steps of the whole run (the length of a schedule over steps).
    """

    epoch: int
    iteration: int
    optimizer_steps: int
    total_optimizer_steps: int


class SelfSupervisedMethod(ABC):
    """One self-supervised method as a plug-in of :class:`~monai_ssl.engines.SelfSupervisedTrainer`.

    The trainer owns the step machinery (amp, accumulation, the NaN guard, the optimizer-step count);
    a method says only what differs between BYOL, DINO and CASS:

    - which views of a batch it reads (:attr:`view_keys`, the first :attr:`num_global_views` are
      the global ones: DINO's teacher sees only those; BYOL reads 2, CASS 1);
    - its loss over those views (:meth:`loss`), with the scalars handlers log;
    - what happens to the gradients before the optimizer steps (:meth:`before_optimizer_step`:
      DINO drops its last layer's gradients in the first epoch);
    - which moving-average target follows the trained network, with what schedule over optimizer
      steps (:meth:`momentum` and :meth:`after_optimizer_step`: BYOL's target, DINO's teacher; none
      for CASS);
    - which parameters each optimizer trains (:meth:`parameter_groups`: one per CASS member);
    - modules besides the network whose state a resumed run needs (:meth:`state_modules`: DINO's
      center);
    - the encoder kept after pre-training (:meth:`export_backbone`).

    Attributes:
        name: the method's name (``"byol"``, ``"dino"``, ``"cass"``): in messages and TensorBoard tags.
        view_keys: keys of the views in each batch, global views first.
        num_global_views: how many of the first views are global.
    """

    name: str = "method"
    view_keys: tuple[str, ...] = ("view1", "view2")
    num_global_views: int = 2

    @property
    def num_views(self) -> int:
        """Views per image the method reads."""
        return len(self.view_keys)

    @abstractmethod
    def loss(
        self, network: nn.Module, views: Sequence[torch.Tensor], state: MethodState
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The loss of one batch of views (with gradients) and the values handlers read (detached)."""

    def before_optimizer_step(self, network: nn.Module, epoch: int) -> None:
        """Change the gradients after the backward pass, before the optimizer steps (a no-op here).

        Args:
            network: the trained network (possibly wrapped in ``DistributedDataParallel``).
            epoch: epochs completed so far, counted from 0.
        """

    def momentum(self, step: int, total_steps: int) -> float | None:
        """The moving-average rate of the target at optimizer step ``step``; None: the method has no target."""
        return None

    def after_optimizer_step(self, network: nn.Module, step: int, total_steps: int) -> float | None:
        """Move the target after real optimizer step ``step`` (counted from 0); return the rate used, or None."""
        return None

    def parameter_groups(self, network: nn.Module) -> dict[str, list[nn.Parameter]]:
        """The trainable parameters of each optimizer the method needs, by name (one: ``"network"``)."""
        return {"network": [p for p in unwrap_parallel(network).parameters() if p.requires_grad]}

    def state_modules(self) -> dict[str, nn.Module]:
        """Modules of the method whose state a checkpoint must hold to resume (none here)."""
        return {}

    def export_backbone(self, network: nn.Module) -> nn.Module:
        """A copy of the encoder kept after pre-training (the network's own ``export_backbone``)."""
        return unwrap_parallel(network).export_backbone()

    def other_backbones(self, network: nn.Module) -> dict[str, nn.Module]:
        """Copies of the other trained encoders that can be fine-tuned too, by name (none here; CASS: its other network)."""
        return {}

    @staticmethod
    def default_view_keys(global_views: int, local_views: int = 0, prefix: str = "view") -> tuple[str, ...]:
        """``view1 .. viewN``, the keys of :class:`~monai_ssl.transforms.MultiCropViewsd` (global views first)."""
        return multi_crop_view_keys(global_views, local_views, prefix)


def method_optimizers(
    method: SelfSupervisedMethod,
    network: nn.Module,
    optimizer: Callable[[Iterable[Any]], Optimizer],
    exclude_bias_and_norm_from_weight_decay: bool = False,
) -> list[Optimizer]:
    """One optimizer per parameter group of ``method`` (e.g. a ``_mode_: partial`` ``torch.optim.Adam``).

    With ``exclude_bias_and_norm_from_weight_decay`` each optimizer gets two torch parameter groups: the
    weights (``ndim >= 2``, regularised with the optimizer's weight decay) and the biases and normalisation
    parameters (``ndim <= 1``) with ``weight_decay=0.0`` and ``"fixed_weight_decay": True``, which a weight-decay
    schedule (:class:`~monai_ssl.handlers.OptimizerSchedules`) leaves alone. This is the DINO reference code's
    ``utils.get_params_groups`` (Caron et al. 2021): no weight decay on biases and Norm parameters. A group
    left empty is not passed to the optimizer.

    Args:
        method: the method whose :meth:`~SelfSupervisedMethod.parameter_groups` are trained.
        network: the method's network.
        optimizer: builds an optimizer from parameters or from torch parameter groups (dicts).
        exclude_bias_and_norm_from_weight_decay: split each group as above; False: the parameters as they are.

    Example:
        >>> # CASS: [Adam(cnn parameters), Adam(transformer parameters)]
        >>> # optimizers = method_optimizers(CASSMethod(), cass_network, functools.partial(torch.optim.Adam, lr=1e-3))
    """
    groups = method.parameter_groups(network).values()
    if not exclude_bias_and_norm_from_weight_decay:
        return [optimizer(params) for params in groups]
    return [optimizer(_decay_groups(params)) for params in groups]


def _decay_groups(params: Iterable[nn.Parameter]) -> list[dict[str, Any]]:
    """Weights (``ndim >= 2``) in one torch parameter group, biases/norm parameters without weight decay in another."""
    params = list(params)
    regularised = [p for p in params if p.ndim >= 2]
    fixed = [p for p in params if p.ndim <= 1]
    groups: list[dict[str, Any]] = []
    if regularised:
        groups.append({"params": regularised})
    if fixed:
        groups.append({"params": fixed, "weight_decay": 0.0, "fixed_weight_decay": True})
    return groups
