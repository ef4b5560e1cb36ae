"""``CrossTeachingTrainer``: semi-supervised segmentation by cross-teaching two networks (Luo et al., MIDL 2022)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from torch import nn
from torch.optim.optimizer import Optimizer

from monai_ssl.engines.step_trainer import OptimizerStepTrainer
from monai_ssl.losses import CrossTeachingLoss, cross_teaching_weight

__all__ = ["CrossTeachingTrainer", "cross_teaching_scalars"]


class CrossTeachingTrainer(OptimizerStepTrainer):
    """Train two segmentation networks that teach each other on unlabeled images.

    Each iteration takes a labeled batch from ``train_data_loader`` (its length is the epoch) and an
    unlabeled batch from ``unlabeled_data_loader`` (cycled as long as needed, with ``set_epoch`` on a
    distributed sampler at each new pass). Both networks see the labeled and unlabeled images in one
    forward pass (as in the paper's code, so batch norm sees the whole batch); the loss is
    :class:`~monai_ssl.losses.CrossTeachingLoss` with the weight ``lambda`` of the cross term ramped by
    :func:`~monai_ssl.losses.cross_teaching_weight` over the run's optimizer steps. Each network has its own
    optimizer; both step together through the shared step core (amp, accumulation, NaN guard), and the
    ramp advances after each real optimizer step only.

    Args:
        device: where to train.
        max_epochs: epochs to run; an epoch is one pass over the labeled images.
        train_data_loader: labeled batches with ``"image"`` and ``"label"`` (class indices, ``(B, 1, H, W)``).
        unlabeled_data_loader: unlabeled batches with ``"image"``.
        networks: the two networks by name, e.g. ``SegmentationPair.members`` (``{"cnn": ..., "transformer": ...}``);
            the names tag the logged losses.
        optimizers: one optimizer per network, in the same order.
        loss_function: the cross-teaching loss; default :class:`~monai_ssl.losses.CrossTeachingLoss`.
        max_cross_weight: ``lambda`` at the end of the ramp (paper: 0.1).
        rampup_fraction: the share of the run over which ``lambda`` ramps up (paper: the whole run, 1.0).
        run_name: the run's name in messages.
        trainer_kwargs: ``epoch_length``, ``non_blocking``, ``prepare_batch``, ``train_handlers``, ``amp``,
            ``accumulation_steps``, ``optim_set_to_none``, ``amp_kwargs``, ``to_kwargs``, ``decollate``: as
            :class:`~monai_ssl.engines.OptimizerStepTrainer`.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        unlabeled_data_loader: Iterable,
        networks: Mapping[str, nn.Module],
        optimizers: Sequence[Optimizer],
        loss_function: CrossTeachingLoss | None = None,
        max_cross_weight: float = 0.1,
        rampup_fraction: float = 1.0,
        run_name: str = "cross-teaching",
        **trainer_kwargs: Any,
    ) -> None:
        names = list(networks.keys())
        if len(names) != 2:
            raise ValueError(f"CrossTeachingTrainer needs exactly 2 networks, got {len(names)}: {names}.")
        if isinstance(optimizers, Optimizer) or len(optimizers) != 2:
            raise ValueError("CrossTeachingTrainer needs one optimizer per network (2), in the networks' order.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            optimizers=optimizers,
            run_name=run_name,
            **trainer_kwargs,
        )
        self.network_names = names
        self.networks = [networks[n] for n in names]
        self.unlabeled_data_loader = unlabeled_data_loader
        self.loss_function = loss_function or CrossTeachingLoss()
        self.max_cross_weight = max_cross_weight
        self.rampup_fraction = rampup_fraction
        cross_teaching_weight(0, 1, max_cross_weight, rampup_fraction)  # validates the settings now
        self._unlabeled_iterator: Iterator | None = None
        self._unlabeled_passes = 0

    def current_cross_weight(self) -> float:
        """``lambda`` for the next step, from the optimizer steps done (so a resumed run continues the ramp)."""
        return cross_teaching_weight(
            self.state.optimizer_steps, self.total_optimizer_steps, self.max_cross_weight, self.rampup_fraction
        )

    def next_unlabeled_batch(self) -> Any:
        """The next unlabeled batch, starting a new pass over the unlabeled loader when one ends.

        Raises:
            ValueError: the unlabeled loader gives no batch at all.
        """
        for _ in range(2):
            if self._unlabeled_iterator is None:
                sampler = getattr(self.unlabeled_data_loader, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(self._unlabeled_passes)
                self._unlabeled_passes += 1
                self._unlabeled_iterator = iter(self.unlabeled_data_loader)
            try:
                return next(self._unlabeled_iterator)
            except StopIteration:
                self._unlabeled_iterator = None
        raise ValueError(
            f"{self.run_name}: the unlabeled data loader gives no batch; it needs at least one unlabeled image per "
            "batch (with drop_last=True, at least batch_size images)."
        )

    def _iteration(self, engine: CrossTeachingTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One cross-teaching step (Luo et al. eq. 1-3) for both networks."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        images, labels = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        if labels is None:
            raise KeyError(f"{engine.run_name}: the labeled batch has no 'label' (keys present: {sorted(batchdata)}).")
        unlabeled, _ = engine.prepare_batch(
            engine.next_unlabeled_batch(), engine.state.device, engine.non_blocking, **engine.to_kwargs
        )
        if unlabeled.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"{engine.run_name}: unlabeled images {tuple(unlabeled.shape[1:])} and labeled images "
                f"{tuple(images.shape[1:])} must have the same channel count and size (the same preprocessing)."
            )
        zero_grad, step = engine._should_step()
        for network in engine.networks:
            network.train()
        if zero_grad:
            engine.zero_grad()
        weight = engine.current_cross_weight()
        n_labeled = images.shape[0]
        inputs = torch.cat([images, unlabeled], dim=0)
        with engine.autocast():
            logits = [network(inputs) for network in engine.networks]
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            terms = engine.loss_function(
                [lg[:n_labeled] for lg in logits], labels, [lg[n_labeled:] for lg in logits], weight
            )
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine.check_finite(terms.loss, "cross-teaching loss")
        engine.backward(terms.loss)
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        stepped = engine.step_optimizers() if step else False
        engine.fire_event(IterationEvents.MODEL_COMPLETED)

        output: dict[str, Any] = {
            "image": images,
            "label": labels,
            "unlabeled_image": unlabeled,
            "loss": terms.loss.detach(),
            "cross_weight": weight,
            "optimizer_stepped": stepped,
        }
        for name, optimizer, lg, sup, cross, pseudo in zip(
            engine.network_names, engine.optimizers, logits, terms.supervised, terms.cross, terms.pseudo_labels
        ):
            output[f"pred_{name}"] = lg[:n_labeled].detach()
            output[f"supervised_loss_{name}"] = sup.detach()
            output[f"cross_loss_{name}"] = cross.detach()
            output[f"lr_{name}"] = optimizer.param_groups[0]["lr"]
        return output


def cross_teaching_scalars(output: Mapping[str, Any]) -> dict[str, float]:
    """The scalars of a ``CrossTeachingTrainer`` output, tagged for TensorBoard.

    ``train/loss``, ``train/cross_weight``, and per network ``train/supervised_loss/<name>``,
    ``train/cross_loss/<name>``, ``train/lr/<name>``. Use as ``output_transform`` of MONAI's
    ``TensorBoardStatsHandler``.
    """
    scalars = {"train/loss": float(output["loss"]), "train/cross_weight": float(output["cross_weight"])}
    for key, value in output.items():
        for prefix in ("supervised_loss_", "cross_loss_", "lr_"):
            if key.startswith(prefix):
                scalars[f"train/{prefix[:-1]}/{key[len(prefix):]}"] = float(value)
    return scalars
