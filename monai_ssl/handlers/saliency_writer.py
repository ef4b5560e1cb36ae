"""Saliency maps in an evaluation: PNGs of chosen images, and saliency measured against lesion masks.

S4MI (Singh et al., "Self-Supervision Meets Medical Imaging", Sec. 5 / Fig. 5) shows saliency maps of the
most and least confident test images to see where each pre-trained model looks. :class:`SaliencyWriter`
draws them from a MONAI ``SupervisedEvaluator`` and, where the items carry object masks, measures every
evaluated image: the share of its saliency inside the mask and the pointing game
(:mod:`monai_ssl.metrics.saliency_overlap`), with 95 % intervals. The maps are those of
:func:`monai_ssl.visualize.saliency_maps` (gradient, Grad-CAM, Grad-CAM on ViT tokens).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import string_list_all_gather
from torch import nn

from monai_ssl.metrics.saliency_overlap import pointing_game, saliency_in_mask_share
from monai_ssl.utils import atomic_write_text
from monai_ssl.visualize.plots import image_grid, save_figure
from monai_ssl.visualize.saliency import figure_rgb, saliency_figure, saliency_maps, volume_saliency_figure

from .saliency_items import (
    SaliencySample,
    as_numpy,
    measurement_summary,
    per_sample,
    resolve_saliency_method,
    safe_file_name,
)

__all__ = ["SaliencyWriter", "resolve_saliency_method"]

logger = logging.getLogger("monai_ssl")

FOLDER = "saliency"


class SaliencyWriter:
    """Write saliency PNGs of chosen evaluated images and measure saliency inside object masks.

    Attach to a MONAI ``SupervisedEvaluator`` whose postprocessing turned ``pred`` into probabilities
    (``Activationsd(softmax=True)``, or ``sigmoid=True`` for one binary logit or multi-label). Each map
    explains the predicted class: the arg-max (multi-class; multi-label: the label with the highest
    probability) or, for one binary probability ``p``, class 1 where ``p >= 0.5``.

    Which images are drawn:

    * ``num_images=n`` (default 4): the ``n`` most and ``n`` least confident, each image once (with
      fewer than ``2n`` images the least confident list leaves out the most confident ones; confidence =
      the largest probability, ``max(p, 1 - p)`` for binary, ties to the earlier image, as
      :func:`~monai_ssl.visualize.confidence_extremes`). Only the running candidates are kept (two bounded
      heaps of CPU tensors), and their maps are computed at ``COMPLETED``.
    * ``image_ids=[...]``: those images; ids not evaluated are one ``ValueError`` naming them at ``COMPLETED``.
    * ``num_images=None``: every image, drawn batch by batch (the standalone :func:`~monai_ssl.recipes.saliency_run`).

    Files, in ``<output_dir>/saliency/`` (written into a hidden sibling folder and swapped in whole at
    ``COMPLETED``): ``<rank>_<most|least>_confident_<id>.png`` (``<rank>_given_<id>.png``,
    ``<rank>_<id>.png`` for all images): the image beside its map, the mask outline if any, a title with the
    id, predicted class, probability and true class; and ``saliency.json``: the method, the images and why
    each was chosen, and the measurement. When masks are measured (``measure``), ``saliency.json`` holds
    per-image in-mask shares and pointing-game hits (Zhang et al., ECCV 2016), the mean share with its
    Student t 95 % interval (:func:`~monai_ssl.metrics.mean_ci95`) and the hit rate with its Wilson 95 %
    interval (:func:`~monai_ssl.metrics.saliency_overlap.wilson_interval95`); the same summary is merged as
    ``"saliency"`` into ``<output_dir>/metrics.json`` when that file exists (written by
    :class:`~monai_ssl.handlers.ClassificationReportWriter` at ``EPOCH_COMPLETED``, before ``COMPLETED``).
    Images whose mask is empty are counted as ``n_without_object`` and not measured.

    Measuring runs at every ``ITERATION_COMPLETED``, outside the evaluator's ``no_grad`` forward, so each
    batch is run once more with gradients on. Volumes (``slice_axis``): the input ``(B, C, S, H, W)`` gets
    gradient saliency, the PNG shows the (up to 8 most salient) slices, a volume's share and hit count
    all its voxels. Distributed: only rank 0 writes, and draws from its own share of the images; the
    per-image measurements of all ranks are gathered (``evenly_divisible_all_gather``) before the means.

    Args:
        output_dir: the evaluation folder (the report's ``output_dir``).
        network: the evaluated network (the maps are computed on its device).
        method: ``"auto"``, ``"gradient"``, ``"gradcam"`` or ``"vit_gradcam"`` (:func:`resolve_saliency_method`).
        num_images: how many most and least confident images to draw; ``None`` draws every image.
        image_ids: draw these ids instead (``num_images`` is then not used).
        class_names: names of the classes in titles and ``saliency.json`` (default ``"0"``, ``"1"``, ...).
        image_key, mask_key, id_key: keys of the items. Without ``id_key`` the id is the file name of the
            image (its meta ``filename_or_obj``, or ``<image_key>_meta_dict``), else the running index.
        pred_key, label_key: keys of the probabilities and labels in the evaluator's output.
        summary_writer: a TensorBoard ``SummaryWriter``: the same figures as one image grid ``saliency/examples``.
        measure: ``"auto"`` measures when the items carry ``mask_key``; ``True`` requires masks; ``False`` never.
        overwrite: replace a ``saliency`` folder an earlier run left in ``output_dir`` (else ``FileExistsError``
            at ``attach``); later runs of the same handler replace its own folder.
        slice_axis: the slice axis of volume inputs ``(B, C, S, H, W)`` (2, 3 or 4); ``None`` for 2D images.
        target_layer: the Grad-CAM layer (default: the ResNet's last stage).
        batch_size: images per saliency forward at ``COMPLETED``.
        display_key: the key of a picture of the image to draw instead of the network's input (2D only), e.g.
            the ``uint8`` image before a per-image standardisation that makes the input's colours meaningless
            to a person (:func:`~monai_ssl.recipes.skin_lesion_transforms` with ``display_key``); ``None``
            draws the input.

    Example (``evaluate.json``, after the report handler)::

        "saliency": {"_target_": "monai_ssl.handlers.SaliencyWriter", "output_dir": "@output_dir",
                     "network": "@network", "class_names": "$@data[1]", "overwrite": "@overwrite"}
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        network: nn.Module,
        method: str = "auto",
        num_images: int | None = 4,
        image_ids: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        image_key: str = "image",
        mask_key: str = "mask",
        id_key: str = "id",
        pred_key: str = "pred",
        label_key: str = "label",
        summary_writer: Any | None = None,
        measure: bool | str = "auto",
        overwrite: bool = False,
        slice_axis: int | None = None,
        target_layer: str | None = None,
        batch_size: int = 8,
        display_key: str | None = None,
    ) -> None:
        if num_images is not None and (isinstance(num_images, bool) or int(num_images) != num_images or num_images < 1):
            raise ValueError(f"SaliencyWriter: `num_images` must be an integer >= 1 or None (every image), got {num_images!r}.")
        if measure not in ("auto", True, False):
            raise ValueError(f"SaliencyWriter: `measure` must be 'auto', True or False, got {measure!r}.")
        if not isinstance(overwrite, bool):
            raise ValueError(f"SaliencyWriter: `overwrite` must be True or False (--overwrite True), got {overwrite!r}.")
        if slice_axis not in (None, 2, 3, 4):
            raise ValueError(f"SaliencyWriter: `slice_axis` must be None (2D images) or 2, 3 or 4 of (B, C, S, H, W), got {slice_axis!r}.")
        if isinstance(class_names, str):
            raise ValueError(f"SaliencyWriter: `class_names` must be a list of names, got the string {class_names!r}.")
        if isinstance(image_ids, str):
            image_ids = [image_ids]
        self.output_dir = Path(output_dir)
        self.network = network
        self.method = resolve_saliency_method(network, method, slice_axis)
        self.num_images = None if num_images is None else int(num_images)
        self.image_ids = None if image_ids is None else [str(i) for i in image_ids]
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.image_key, self.mask_key, self.id_key = image_key, mask_key, id_key
        self.pred_key, self.label_key = pred_key, label_key
        self.summary_writer = summary_writer
        self.measure = measure
        self.overwrite = overwrite
        self.slice_axis = slice_axis
        self.target_layer = target_layer
        self.batch_size = int(batch_size)
        self.display_key = display_key
        self._published = False
        self._reset()

    # ------------------------------------------------------------ events
    def attach(self, engine: Engine) -> None:
        """Register on ``engine``; refuse an earlier ``saliency`` folder unless ``overwrite``.

        Raises:
            FileExistsError: ``<output_dir>/saliency`` holds files and ``overwrite`` is false.
        """
        folder = self.output_dir / FOLDER
        if not self.overwrite and folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(
                f"SaliencyWriter: {folder} already holds saliency maps; it is left as it is. To keep it, write this "
                "evaluation into a new folder with --output_dir <new folder>; to replace it, add --overwrite True."
            )
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _e: self._reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def _reset(self) -> None:
        self._count = 0
        self._most: list[tuple[float, int, SaliencySample]] = []
        self._least: list[tuple[float, int, SaliencySample]] = []
        self._given: dict[str, SaliencySample] = {}
        self._drawn: list[dict] = []
        self._figures: list[np.ndarray] = []
        self._measured: dict[int, tuple[str, float | None, bool]] = {}
        self._no_object: list[str] = []
        self._staged: Path | None = None

    def __call__(self, engine: Engine) -> None:
        """Collect one iteration: measure its images (with masks) and keep the candidates to draw."""
        batch, output = per_sample(engine.state.batch), per_sample(engine.state.output)
        if len(batch) != len(output):
            raise ValueError(f"SaliencyWriter: {len(batch)} batch items but {len(output)} outputs in this iteration.")
        samples = [self._sample(b, o) for b, o in zip(batch, output)]
        has_masks = all(s.mask is not None for s in samples)
        if self.measure is True and not has_masks:
            raise ValueError(
                f"SaliencyWriter: measure=True needs a mask under key {self.mask_key!r} in every item; the items "
                f"have keys {sorted(batch[0])}."
            )
        maps = None
        if (self.measure == "auto" and has_masks) or self.measure is True:
            maps = self._maps(samples)
            self._measure(samples, maps)
        if self.image_ids is not None:
            wanted = set(self.image_ids)
            self._given.update({s.id: s for s in samples if s.id in wanted})
        elif self.num_images is None:
            self._draw(samples, [("", "every image")] * len(samples), maps)
        else:
            for s in samples:
                self._push(self._most, (s.confidence, -s.index), s)
                self._push(self._least, (-s.confidence, -s.index), s)

    def _push(self, heap: list, key: tuple[float, int], sample: SaliencySample) -> None:
        entry = (*key, sample)
        if len(heap) < self.num_images:
            heapq.heappush(heap, entry)
        elif key > heap[0][:2]:
            heapq.heapreplace(heap, entry)

    def completed(self, engine: Engine) -> None:
        """Draw the chosen images, gather the measurements, write ``saliency.json`` and merge ``metrics.json``."""
        if self.image_ids is not None:
            found = set(self._given)
            if idist.get_world_size() > 1:
                found = set(string_list_all_gather(sorted(found)))
            unknown = [i for i in self.image_ids if i not in found]
            if unknown:
                raise ValueError(
                    f"SaliencyWriter: image_ids {unknown} were not among the {self._count} evaluated images (ids are "
                    f"the items' {self.id_key!r} or their file names)."
                )
            chosen = [self._given[i] for i in self.image_ids if i in self._given]
            self._draw(chosen, [(f"{r}_given", "given id") for r in range(1, len(chosen) + 1)], None)
        elif self.num_images is not None:
            most = [e[2] for e in sorted(self._most, key=lambda e: (-e[0], -e[1]))]
            drawn = {s.index for s in most}  # with fewer than 2 x num_images images, draw each image once
            least = [e[2] for e in sorted(self._least, key=lambda e: (-e[0], -e[1])) if e[2].index not in drawn]
            why = [(f"{r}_most_confident", f"most confident #{r}") for r in range(1, len(most) + 1)]
            why += [(f"{r}_least_confident", f"least confident #{r}") for r in range(1, len(least) + 1)]
            self._draw(most + least, why, None)
        summary = self._summary()
        if idist.get_rank() != 0:
            return
        staged = self._staging()
        report = {"method": self.method, "selection": self._selection(), "images": self._drawn, "measured": summary}
        atomic_write_text(json.dumps(report, indent=2) + "\n", staged / "saliency.json")
        self._swap(staged)
        if summary is not None:
            self._merge_metrics(summary)
        if self.summary_writer is not None and self._figures:
            pictures = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255.0 for f in self._figures])
            self.summary_writer.add_image(f"{FOLDER}/examples", image_grid(pictures, nrow=2), global_step=engine.state.epoch)
            self.summary_writer.flush()
        logger.info("Saliency (%s): %d pictures%s -> %s", self.method, len(self._drawn),
                    "" if summary is None else f", in-mask share {summary['in_mask_share_mean']} over n={summary['n']}",
                    self.output_dir / FOLDER)

    # ------------------------------------------------------------ samples and maps
    def _sample(self, item: dict, out: dict) -> SaliencySample:
        if self.pred_key not in out:
            raise ValueError(f"SaliencyWriter: the evaluator output has no {self.pred_key!r} (keys {sorted(out)}).")
        if self.image_key not in item:
            raise ValueError(f"SaliencyWriter: the batch item has no image under {self.image_key!r} (keys {sorted(item)}).")
        probs = as_numpy(out[self.pred_key]).reshape(-1)
        if probs.size == 0 or not np.all((probs >= 0) & (probs <= 1)):
            raise ValueError(
                "SaliencyWriter: `pred` must hold probabilities in [0, 1]; add Activationsd(keys='pred', softmax=True) "
                "(or sigmoid=True) to the evaluator's postprocessing."
            )
        if probs.size == 1:
            predicted, confidence = int(probs[0] >= 0.5), float(max(probs[0], 1.0 - probs[0]))
        else:
            predicted = int(np.argmax(probs))
            confidence = float(probs[predicted])
        label = out.get(self.label_key, item.get(self.label_key))
        mask = item.get(self.mask_key)
        index = self._count
        self._count += 1
        image = item[self.image_key]
        display = item.get(self.display_key) if self.display_key is not None and self.slice_axis is None else None
        return SaliencySample(
            index=index, id=self._id(item, image, index), image=image.detach().cpu().as_subclass(torch.Tensor),
            mask=None if mask is None else torch.as_tensor(as_numpy(mask)), probs=probs,
            label=None if label is None else as_numpy(label).reshape(-1), predicted=predicted, confidence=confidence,
            display=None if display is None else torch.as_tensor(display).detach().cpu().as_subclass(torch.Tensor),
        )

    def _id(self, item: dict, image: Any, index: int) -> str:
        if item.get(self.id_key) is not None:
            value = item[self.id_key]
            return str(value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value)
        meta = getattr(image, "meta", None) or item.get(f"{self.image_key}_meta_dict") or {}
        name = meta.get("filename_or_obj") or item.get("filename_or_obj")
        return Path(str(name)).name if name else str(index)

    def _maps(self, samples: list[SaliencySample]) -> torch.Tensor:
        """CPU maps ``(N, 1, ...)`` of the samples for their predicted classes."""
        device = next(self.network.parameters()).device
        chunks = []
        for start in range(0, len(samples), self.batch_size):
            part = samples[start : start + self.batch_size]
            x = torch.stack([s.image for s in part]).float().to(device)
            cls = torch.tensor([s.predicted for s in part], device=device)
            chunks.append(saliency_maps(self.network, x, self.method, self.target_layer, cls).cpu())
        return torch.cat(chunks)

    def _planes(self, sample: SaliencySample, smap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Image, map and mask with the slices on axis 1: ``(C, S, H, W)`` (2D: ``(C, H, W)``)."""
        image, mask = sample.image, sample.mask
        if self.slice_axis is not None and self.slice_axis != 2:
            image, smap = image.movedim(self.slice_axis - 1, 1), smap.movedim(self.slice_axis - 1, 1)
            mask = None if mask is None else mask.movedim(self.slice_axis - 1, 1)
        if mask is not None:
            mask = mask.reshape((-1,) + tuple(mask.shape[-smap.ndim + 1 :]))[:1].float()
            if mask.shape[1:] != smap.shape[1:]:
                mask = torch.nn.functional.interpolate(mask[None], size=smap.shape[1:], mode="nearest")[0]
        return image, smap, mask

    def _measure(self, samples: list[SaliencySample], maps: torch.Tensor) -> None:
        flat_maps, flat_masks, kept = [], [], []
        for s, m in zip(samples, maps):
            _, smap, mask = self._planes(s, m)
            if not bool((mask > 0.5).any()):
                self._no_object.append(s.id)
                continue
            flat_maps.append(smap.reshape(-1, smap.shape[-1]))  # a volume's slices stacked: same share and hit
            flat_masks.append(mask.reshape(-1, mask.shape[-1]) > 0.5)
            kept.append(s)
        if not kept:
            return
        share = saliency_in_mask_share(torch.stack(flat_maps), torch.stack(flat_masks))["per_image"]
        hits = pointing_game(torch.stack(flat_maps), torch.stack(flat_masks))["per_image"]
        for s, v, h in zip(kept, share, hits):
            self._measured[s.index] = (s.id, v, bool(h))

    # ------------------------------------------------------------ writing
    def _names(self, width: int) -> list[str]:
        k = 2 if width == 1 else width
        if self.class_names is None:
            return [str(i) for i in range(k)]
        if len(self.class_names) != k:
            raise ValueError(
                f"SaliencyWriter: `class_names` has {len(self.class_names)} names ({self.class_names}) but the "
                f"predictions are of {k} classes ({width} probabilit{'y' if width == 1 else 'ies'} per image)."
            )
        return self.class_names

    def _true(self, sample: SaliencySample) -> str | None:
        if sample.label is None or sample.label.size == 0:
            return None
        names = self._names(sample.probs.size)
        lab = sample.label
        if lab.size == 1:
            return names[int(lab[0])] if 0 <= int(lab[0]) < len(names) else str(lab[0])
        on = [names[i] for i in np.flatnonzero(lab > 0.5) if i < len(names)]
        return "+".join(on) if on else "none"

    def _draw(self, samples: list[SaliencySample], why: list[tuple[str, str]], maps: torch.Tensor | None) -> None:
        if not samples or idist.get_rank() != 0:
            return
        maps = self._maps(samples) if maps is None else maps
        staged = self._staging()
        for s, (rank, reason), smap in zip(samples, why, maps):
            name = f"{rank}_{safe_file_name(s.id)}.png" if rank else f"{s.index + 1}_{safe_file_name(s.id)}.png"
            predicted = self._names(s.probs.size)[s.predicted]
            probability = float(s.probs[0] if s.probs.size == 1 and s.predicted == 1 else
                                1.0 - s.probs[0] if s.probs.size == 1 else s.probs[s.predicted])
            true = self._true(s)
            title = f"{s.id}: predicted {predicted} (p={probability:.3f})" + (f", true {true}" if true else "")
            image, smap, mask = self._planes(s, smap)
            if s.display is not None:
                image = s.display
            if self.slice_axis is not None:
                fig = volume_saliency_figure(image, smap, title, mask)
            else:
                fig = saliency_figure(image, smap, title, mask)
            save_figure(fig, staged / name)
            if self.summary_writer is not None:
                self._figures.append(figure_rgb(fig))
            record = {"file": name, "id": s.id, "why": reason, "predicted": predicted, "probability": probability,
                      "confidence": s.confidence, "label": true}
            if s.index in self._measured:
                record["in_mask_share"], record["pointing_game_hit"] = self._measured[s.index][1:]
            self._drawn.append(record)

    def _selection(self) -> dict:
        if self.image_ids is not None:
            return {"kind": "given image_ids", "image_ids": self.image_ids}
        if self.num_images is None:
            return {"kind": "every image"}
        return {"kind": "most and least confident", "num_images": self.num_images, "evaluated": self._count}

    def _summary(self) -> dict | None:
        """The measurement over all ranks; ``None`` when nothing was measured."""
        return measurement_summary(self.method, list(self._measured.values()), list(self._no_object))

    def _staging(self) -> Path:
        if self._staged is None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._staged = self.output_dir / f".{FOLDER}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._staged.mkdir()
        return self._staged

    def _swap(self, staged: Path) -> None:
        """Put ``staged`` in place of ``<output_dir>/saliency`` (the earlier one removed after the rename)."""
        target = self.output_dir / FOLDER
        if target.exists() and not (self.overwrite or self._published):
            shutil.rmtree(staged, ignore_errors=True)
            raise FileExistsError(f"SaliencyWriter: {target} appeared during the evaluation; not replaced (--overwrite True).")
        old = self.output_dir / f".{FOLDER}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            os.rename(target, old)
        os.rename(staged, target)
        shutil.rmtree(old, ignore_errors=True)
        self._staged, self._published = None, True

    def _merge_metrics(self, summary: dict) -> None:
        path = self.output_dir / "metrics.json"
        if not path.is_file():
            return
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"SaliencyWriter: {path} is not valid JSON ({err}); cannot add the 'saliency' entry.") from err
        keys = ("method", "in_mask_share_mean", "in_mask_share_ci", "pointing_game_hit_rate", "pointing_game_ci", "n")
        metrics["saliency"] = {k: summary[k] for k in keys}
        atomic_write_text(json.dumps(metrics, indent=2) + "\n", path)
