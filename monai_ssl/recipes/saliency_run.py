"""Saliency maps of a trained classifier for any folder of images (the bundles' ``saliency.json``).

The standalone half of S4MI's saliency figures (Singh et al., "Self-Supervision Meets Medical Imaging",
Sec. 5): read the images of a folder, predict, and write the image beside its saliency map for the
predicted class, for every image or the most and least confident, with the in-mask share and the
pointing game when lesion masks are given. It runs a MONAI ``SupervisedEvaluator`` with
:class:`~monai_ssl.handlers.SaliencyWriter` and a progress bar, so the pictures and ``saliency.json``
are exactly those of ``evaluate.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd
from torch import nn

from monai_ssl.data import ISIC_MASK_NAME, image_datalist
from monai_ssl.handlers import ProgressDisplay, SaliencyWriter

from .evaluation_loader import evaluation_loader

__all__ = ["attach_masks", "saliency_run"]


def attach_masks(items: list[dict], mask_dir: str | os.PathLike, mask_key: str = "mask") -> list[dict]:
    """Add the path of each item's mask under ``mask_key``, matched by the image's id (file name).

    For an image ``<stem>.<ext>`` the mask is ``<mask_dir>/<stem>_segmentation.png`` (the ISIC layout,
    :data:`~monai_ssl.data.ISIC_MASK_NAME`) or else ``<mask_dir>/<stem>.png``.

    Raises:
        FileNotFoundError: ``mask_dir`` is not a folder, or images without a mask (the count and the first
            few names are given; all images must have one, or pass no ``mask_dir``).
    """
    folder = Path(mask_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"saliency_run: mask_dir {folder} is not a folder (--mask_dir: a folder of lesion masks).")
    out, missing = [], []
    for item in items:
        stem = Path(str(item["id"])).stem
        found = [p for p in (folder / ISIC_MASK_NAME.format(stem=stem), folder / f"{stem}.png") if p.is_file()]
        if not found:
            missing.append(str(item["id"]))
            continue
        out.append({**item, mask_key: str(found[0].resolve())})
    if missing:
        raise FileNotFoundError(
            f"saliency_run: {len(missing)} of {len(items)} images have no mask in {folder} (expected "
            f"<id>_segmentation.png or <id>.png), e.g. {missing[:5]}; add them or run without --mask_dir."
        )
    return out


def saliency_run(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    preprocessing: Callable,
    network: nn.Module,
    model_file: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    method: str = "auto",
    image_ids: Sequence[str] | None = None,
    num_images: int | None = None,
    mask_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    class_names: Sequence[str] | None = None,
    multi_label: bool = False,
    slice_axis: int | None = None,
    num_workers: int = 0,
    skip_unreadable: bool = False,
    summary_writer: Any | None = None,
    display_key: str | None = None,
) -> dict:
    """Write saliency PNGs and ``saliency.json`` for the images of ``input_dir`` into ``<output_dir>/saliency``.

    Args:
        input_dir: a folder of images (:func:`~monai_ssl.data.image_datalist`; the id is the file name).
        output_dir: where the ``saliency`` folder goes.
        preprocessing: the evaluation transform (as ``evaluate.json``'s ``preprocessing``); with ``mask_dir``
            it must also load ``mask`` (e.g. :func:`~monai_ssl.recipes.skin_lesion_transforms` does).
        network: the classifier (as ``evaluate.json``'s ``network_def``), returning logits.
        model_file: its weights, loaded with :func:`~monai_ssl.networks.load_weights`; ``None`` when
            ``network`` already holds them.
        device: where to run (default: CUDA when available).
        method: ``"auto"``, ``"gradient"``, ``"gradcam"`` or ``"vit_gradcam"``.
        image_ids: draw only these file names (ids not found are one error naming them).
        num_images: the number of most and least confident images to draw; ``None`` draws every image.
        mask_dir: lesion masks matched by id (:func:`attach_masks`): the in-mask share and pointing game.
        batch_size: images per forward.
        overwrite: replace an earlier ``<output_dir>/saliency``.
        class_names: names of the classes in the titles.
        multi_label: sigmoid per label (the map explains the most probable label); otherwise softmax,
            or a sigmoid for a single-logit binary network.
        slice_axis: the slice axis of volume inputs (see :class:`~monai_ssl.handlers.SaliencyWriter`).
        num_workers: loader worker processes.
        skip_unreadable: drop unreadable images with one warning instead of failing.
        summary_writer: optional TensorBoard writer for the grid of pictures.
        display_key: the key of the picture drawn instead of the network's input (see
            :class:`~monai_ssl.handlers.SaliencyWriter`); the preprocessing must write it.

    Returns:
        The contents of ``saliency.json`` (``{"method", "selection", "images", "measured"}``).

    Raises:
        FileNotFoundError: no ``input_dir`` / ``mask_dir``, or images without masks.
        FileExistsError: ``<output_dir>/saliency`` exists and ``overwrite`` is false.
    """
    import json

    from monai_ssl.networks import load_weights

    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if model_file is not None:
        network = load_weights(network, model_file, produced_by="finetune.json (or evaluate.json's --model_file)")
    network = network.to(device).eval()
    items = image_datalist(input_dir, skip_unreadable=skip_unreadable, setting="input_dir")
    if mask_dir is not None:
        items = attach_masks(items, mask_dir)
    writer = SaliencyWriter(
        output_dir, network, method=method, num_images=num_images, image_ids=image_ids, class_names=class_names,
        summary_writer=summary_writer, overwrite=overwrite, slice_axis=slice_axis, batch_size=batch_size,
        measure="auto" if mask_dir is not None else False, display_key=display_key,
    )
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=evaluation_loader(items, preprocessing, batch_size=batch_size, num_workers=num_workers),
        network=network,
        postprocessing=_ProbabilitiesD(multi_label),
        val_handlers=[writer, ProgressDisplay(output_transform=lambda _o: {}, desc="saliency")],
    )
    evaluator.run()
    return json.loads((Path(output_dir) / "saliency" / "saliency.json").read_text(encoding="utf-8"))


class _ProbabilitiesD:
    """Postprocessing ``pred`` logits to probabilities: softmax, or sigmoid for one logit or multi-label."""

    def __init__(self, multi_label: bool) -> None:
        self.multi_label = bool(multi_label)
        self._softmax, self._sigmoid = Activationsd(keys="pred", softmax=True), Activationsd(keys="pred", sigmoid=True)

    def __call__(self, data: dict) -> dict:
        pred = data["pred"]
        single = pred.numel() == 1 if pred.ndim <= 1 else pred.shape[-1] == 1
        return (self._sigmoid if self.multi_label or single else self._softmax)(data)
