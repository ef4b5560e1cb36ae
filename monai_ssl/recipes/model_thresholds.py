"""Multi-label decision thresholds that travel with the model: chosen on validation after fine-tuning, read back later.

Fine-tuning selects its checkpoint by macro F1 at 0.5; once it ends, :func:`record_validation_thresholds`
runs the selected model over the validation split, picks one threshold per label there
(:func:`~monai_ssl.recipes.validation_thresholds`, maximum F1) and writes them into the model's settings
file. Evaluation and inference then use the model's thresholds (``thresholds: "model"``), so an image
folder without labels gets the same decisions the test report was computed with; the test split never
chooses them. A number or a list overrides them; ``"validation"`` chooses them again in evaluation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from monai_ssl.metrics.multilabel import DEFAULT_THRESHOLD
from monai_ssl.networks.model_settings import read_model_settings, write_model_settings

from .thresholds import report_thresholds

__all__ = ["model_thresholds", "record_validation_thresholds"]

logger = logging.getLogger("monai_ssl")

MODEL = "model"


def record_validation_thresholds(
    model_file: str | os.PathLike,
    network: torch.nn.Module,
    dataloader: Iterable[Any],
    device: str | torch.device,
    multi_label: bool,
    num_labels: int,
    amp: bool = False,
    split: str = "validation",
) -> list[float] | None:
    """Choose the selected model's per-label thresholds on ``split`` and save them in its settings file.

    Nothing happens for a single-label task (the arg-max decides) or when ``model_file`` was not written
    (a run without validation). ``network`` gets the weights of ``model_file`` (the best checkpoint,
    which is not the last epoch's network in general).

    Args:
        model_file: the selected model (``finetune_model.pt``), saved as ``{"model": state}`` or a bare state dict.
        network: the classifier of that model.
        dataloader: the validation loader.
        device: where to run.
        multi_label: the resolved task.
        num_labels: ``K``.
        amp: CUDA autocast.
        split: the split's name, for the log and the saved source.

    Returns:
        The thresholds, or ``None`` when nothing was recorded.
    """
    if not multi_label or not os.path.isfile(model_file):
        return None
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    network.load_state_dict(state.get("model", state) if isinstance(state, Mapping) else state)
    chosen = report_thresholds("validation", True, network, dataloader, device, num_labels, amp=amp, split=split)
    settings = read_model_settings(model_file)
    settings.update(thresholds=chosen["thresholds"], thresholds_source=chosen["source"])
    write_model_settings(model_file, settings)
    logger.info("thresholds %s (%s) saved with %s", [round(t, 4) for t in chosen["thresholds"]], chosen["source"], model_file)
    return chosen["thresholds"]


def model_thresholds(
    setting: Any,
    model_settings: Mapping[str, Any],
    multi_label: bool,
    num_labels: int,
    network: torch.nn.Module | None = None,
    dataloader: Iterable[Any] | None = None,
    device: str | torch.device = "cpu",
    amp: bool = False,
    split: str = "validation",
) -> dict[str, Any]:
    """Resolve a ``thresholds`` setting of evaluation or inference into thresholds and their source.

    Args:
        setting: ``"model"`` (the thresholds saved with the model, else 0.5 for every label, said in the
            log), ``"validation"`` (chosen again on ``split``; needs ``network`` and ``dataloader``), one
            number in [0, 1] or ``num_labels`` numbers.
        model_settings: the model's settings (:func:`~monai_ssl.networks.read_model_settings`).
        multi_label: the resolved task; a single-label task takes none.
        num_labels: ``K``.
        network, dataloader, device, amp, split: for ``"validation"``.

    Returns:
        ``{"thresholds": K floats or None, "source": text or None}``.

    Raises:
        ValueError: ``"validation"`` without a validation loader; see
            :func:`~monai_ssl.recipes.report_thresholds` for the other forms.
    """
    if not multi_label:
        return {"thresholds": None, "source": None}
    if setting == MODEL:
        saved = model_settings.get("thresholds")
        if saved is not None:
            return report_thresholds(saved, True, None, None, device, num_labels) | {
                "source": model_settings.get("thresholds_source", "saved with the model")}
        logger.info("the model has no saved thresholds: %s for every label", DEFAULT_THRESHOLD)
        return {"thresholds": [DEFAULT_THRESHOLD] * int(num_labels), "source": "the default 0.5 (none saved with the model)"}
    if setting == "validation" and (network is None or dataloader is None):
        raise ValueError("`thresholds: validation` needs the labeled validation split; "
                         "here give \"model\", a number in [0, 1] or one number per label")
    return report_thresholds(setting, True, network, dataloader, device, num_labels, amp=amp, split=split)
