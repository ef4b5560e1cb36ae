"""MONAI Label infer task for a monai_ssl bundle: the bundle's own pre-processing, inferer and post-processing.

MONAI Label's stock ``BundleInferTask`` imports ``torchvision`` (which we do not install) and guesses
the task from the bundle's folder name. :class:`BundleInfer` reads the same keys of
``configs/inference.json`` (``network_def``, ``preprocessing``, ``inferer``, ``postprocessing``) and
``models/model.pt``, takes the kind and label names from ``metadata.json``, and answers:

- segmentation: a label image (PNG for 2D inputs) at the input's original size, with the channel
  index as pixel value (``0`` background, ``1`` lesion), the convention MONAI Label's clients use;
- classification: no image, and ``{"class", "probabilities", "prediction"}`` in the JSON (the last
  in MONAI Label's ``ClassificationWriter`` form).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import PILWriter
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Compose, SaveImaged
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.transform.writer import Writer

from monai_ssl.label.served_bundle import CLASSIFICATION, ServedBundle

__all__ = ["INFERENCE_LOCK", "BundleInfer", "classification_result"]

INFERENCE_LOCK = threading.Lock()
"""Held while a model of the server works on one image (an infer, or one image of active-learning scoring):
requests run in FastAPI's thread pool, and one model at a time keeps memory bounded on a busy server."""


def classification_result(probabilities: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """The JSON answer of a classifier: the most probable class and every class's probability.

    Args:
        probabilities: the ``K`` class probabilities, or one probability (a single-logit binary head,
            the probability of ``class_names[1]``).
        class_names: ``K`` names (``["negative", <finding>]`` for a single logit).

    Raises:
        ValueError: the number of probabilities does not match the class names.
    """
    p = torch.as_tensor(np.asarray(probabilities, dtype=np.float32)).reshape(-1)
    if p.numel() == 1 and len(class_names) == 2:
        p = torch.stack([1.0 - p[0], p[0]])
    if p.numel() != len(class_names):
        raise ValueError(f"{p.numel()} probabilities for the {len(class_names)} classes {list(class_names)}.")
    best = int(torch.argmax(p))
    return {
        "class": class_names[best],
        "probabilities": {name: round(float(v), 6) for name, v in zip(class_names, p)},
        "prediction": [{"idx": i, "label": name, "score": float(v)} for i, (name, v) in enumerate(zip(class_names, p))],
    }


class BundleInfer(BasicInferTask):
    """Serve a bundle's ``inference.json`` through MONAI Label (see the module docstring).

    Args:
        bundle: the bundle (see :func:`~monai_ssl.label.read_served_bundle`).
        preload: load the network on every device at start-up.
    """

    def __init__(self, bundle: ServedBundle, preload: bool = False) -> None:
        self.bundle = bundle
        self.parser = bundle.config()
        network = self.parser.get_parsed_content("network_def", instantiate=True)
        super().__init__(
            path=str(bundle.model_file),
            network=network,
            type=InferType.CLASSIFICATION if bundle.kind == CLASSIFICATION else InferType.SEGMENTATION,
            labels=bundle.labels,
            dimension=bundle.dimension,
            description=bundle.description,
            load_strict=True,
            preload=preload,
        )
        self._preprocessing: list[Callable] | None = None
        self._postprocessing: list[Callable] | None = None
        self._inferer: Inferer | None = None

    def info(self) -> dict[str, Any]:  # noqa: D102
        info = super().info()
        info["version"] = self.bundle.version
        info["class_names"] = self.bundle.class_names
        return info

    def _transforms(self, key: str) -> list[Callable]:
        if key not in self.parser.config:
            return []
        parsed = self.parser.get_parsed_content(key, instantiate=True)
        return list(parsed.transforms) if isinstance(parsed, Compose) else list(parsed)

    def pre_transforms(self, data: Any = None) -> Sequence[Callable]:  # noqa: D102
        if self._preprocessing is None:
            self._preprocessing = self._transforms("preprocessing")
        return self._preprocessing

    def inferer(self, data: Any = None) -> Inferer:  # noqa: D102
        if self._inferer is None:
            self._inferer = (
                self.parser.get_parsed_content("inferer", instantiate=True) if "inferer" in self.parser.config else SimpleInferer()
            )
        return self._inferer

    def post_transforms(self, data: Any = None) -> Sequence[Callable]:
        """The bundle's post-processing without its file writers (the answer is written by :meth:`writer`)."""
        if self._postprocessing is None:
            self._postprocessing = [t for t in self._transforms("postprocessing") if not isinstance(t, SaveImaged)]
        return self._postprocessing

    def served_network(self, device: str | torch.device) -> torch.nn.Module:
        """The served network on ``device``, reloaded when ``models/model.pt`` changes (a training finished)."""
        return self._get_network(str(device), None)

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """A label file for segmentation (PNG for 2D), class probabilities in the JSON for classification."""
        pred = data[self.output_label_key]
        if self.bundle.kind == CLASSIFICATION:
            result = classification_result(torch.as_tensor(pred).detach().cpu().float(), self.bundle.class_names)
            return None, result
        if self.bundle.dimension == 3:
            return Writer(label=self.output_label_key, json=self.output_json_key)(data)
        mask = torch.as_tensor(pred).detach().cpu()
        mask = mask[0] if mask.ndim == 3 else mask
        fd, path = tempfile.mkstemp(suffix=".png")
        os.close(fd)
        writer = PILWriter(output_dtype=np.uint8, scale=None)
        writer.set_data_array(mask.to(torch.uint8), channel_dim=None)
        writer.write(path, verbose=False)
        return path, {}
