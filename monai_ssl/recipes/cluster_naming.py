"""Naming the clusters of an unsupervised segmentation network (PiCIE) with the evaluated split's masks.

A PiCIE network (Cho et al., CVPR 2021) outputs ``K`` clusters. As the paper's evaluation (Sec. 4) and its
reference code (``evaluate`` in ``commons.py`` of janghyuncho/PiCIE) do, one pass over a labeled split
counts the cluster/class confusion at full resolution, and the Hungarian assignment
(:func:`~monai_ssl.metrics.match_clusters`) names each cluster with a class. The masks are used for this
naming only; nothing is trained on them. ``evaluate.json`` then scores the renamed prediction
(``lesion_postprocessing(..., cluster_map=...)``) with the usual report, and stores the naming as a
*cluster map* beside the model so that ``inference.json`` (and MONAI Label) can serve the model on images
without masks.

A cluster map is a JSON file bound to one model file by a fingerprint: the file's size and the SHA-256 of
its first MiB (:func:`model_fingerprint`), which changes when the weights are retrained or replaced while
reading only 1 MiB of a large checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, default_prepare_batch
from torch import nn

from monai_ssl.handlers import ProgressDisplay
from monai_ssl.metrics import ClusterConfusion, match_clusters, matched_pixel_accuracy
from monai_ssl.utils import atomic_write_text

__all__ = [
    "CLUSTER_NAMING_NOTE",
    "ClusterNames",
    "checked_cluster_map",
    "cluster_map_file",
    "model_fingerprint",
    "name_clusters",
    "read_cluster_map",
    "resolve_cluster_map",
    "write_cluster_map",
]

CLUSTER_NAMING_NOTE = (
    "unsupervised model: its clusters were named with classes by the Hungarian match on the masks of the "
    "evaluated split; the masks were used only to name the clusters"
)
FINGERPRINT_BYTES = 1 << 20  # the first MiB of the model file
MAP_FORMAT = "monai_ssl cluster map 1"


@dataclass(frozen=True)
class ClusterNames:
    """The naming of a clustering network's output channels.

    Attributes:
        mapping: class of each cluster (``mapping[k]``), as :func:`~monai_ssl.metrics.match_clusters` gives it.
        confusion: ``(K, C)`` pixel counts, row = cluster, column = class, over the split.
        pixel_accuracy: share of the split's pixels whose class is their cluster's class.
    """

    mapping: list[int]
    confusion: list[list[int]]
    pixel_accuracy: float

    def summary(self) -> dict[str, Any]:
        """Entries for a report's ``summary_extra`` (JSON-ready), with :data:`CLUSTER_NAMING_NOTE`."""
        return {"cluster_map": list(self.mapping), "cluster_confusion": [list(r) for r in self.confusion],
                "cluster_pixel_accuracy": self.pixel_accuracy, "cluster_naming": CLUSTER_NAMING_NOTE}


def _item_file(batchdata: Any) -> str:
    """The image file of a (collated) item, from the image's metadata or the ``image`` path, for messages."""
    image = batchdata.get("image") if isinstance(batchdata, dict) else None
    name = getattr(image, "meta", {}).get("filename_or_obj") if image is not None else None
    if name is None and isinstance(image, (str, os.PathLike, list, tuple)):
        name = image
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    return str(name) if name is not None else "an item of the split"


def _labeled_batch(batchdata: Any, device: str | torch.device | None = None, non_blocking: bool = False, **kwargs: Any):
    """MONAI's ``default_prepare_batch`` for items that must carry a mask (``label``)."""
    if not isinstance(batchdata, dict) or "label" not in batchdata:
        raise ValueError(
            "naming the clusters (Hungarian match) needs the masks of the evaluated split; "
            f"{_item_file(batchdata)} has none; inference without masks is fine: use inference.json"
        )
    return default_prepare_batch(batchdata, device, non_blocking, **kwargs)


def name_clusters(network: nn.Module, dataloader: Any, inferer: Callable, postprocessing: Callable, num_clusters: int,
                  num_classes: int, device: str | torch.device, amp: bool = False) -> ClusterNames:
    """One pass over a labeled split: the cluster/class confusion at full resolution, then the Hungarian naming.

    Runs MONAI's ``SupervisedEvaluator`` (eval mode, no gradient, a ``"naming clusters"`` progress bar) with
    the same ``inferer`` and ``postprocessing`` as the evaluation, so the clusters are compared with the masks
    exactly where the report scores them. Follows PiCIE's ``evaluate`` (``commons.py``): a histogram over the
    split, then one linear assignment. ``evaluate.json`` runs the network a second time for its report.

    Args:
        network: the clustering network, logits ``(B, K, H, W)``.
        dataloader: the labeled split (items with ``image`` and ``label``).
        inferer: e.g. the bundle's ``SlidingWindowInferer``.
        postprocessing: :func:`~monai_ssl.recipes.lesion_postprocessing` *without* ``cluster_map`` (softmax,
            ``Invertd`` to the original size, arg-max; the mask to ``device``).
        num_clusters: ``K``, the network's output channels.
        num_classes: ``C`` (``K >= C``).
        device: the evaluator's device.
        amp: automatic mixed precision of the forward pass.

    Raises:
        ValueError: an item without a mask (the message names its file), a cluster value outside ``[0, K)``,
            no labeled pixel in the split, or ``K < C``.
    """
    counts = ClusterConfusion(num_clusters, num_classes)
    evaluator = SupervisedEvaluator(
        device=torch.device(device), val_data_loader=dataloader, network=network, inferer=inferer,
        postprocessing=postprocessing, prepare_batch=_labeled_batch, amp=amp,
        val_handlers=[ProgressDisplay(output_transform=lambda _: {}, desc="naming clusters", persist=False)],
    )

    @evaluator.on(Events.ITERATION_COMPLETED)
    def _count(engine) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        for item in outputs:
            counts.update(item["pred"], item["label"])

    evaluator.run()
    confusion = counts.confusion
    if confusion.sum() == 0:
        raise ValueError("naming the clusters: the split gave no labeled pixel (is the dataloader empty?).")
    mapping = match_clusters(confusion)
    return ClusterNames(mapping=mapping, confusion=confusion.tolist(),
                        pixel_accuracy=matched_pixel_accuracy(confusion, mapping))


def checked_cluster_map(cluster_map: Any, source: str = "`cluster_map`") -> list[int]:
    """``cluster_map`` as a list of class indices (one per cluster), or a ValueError naming ``source``."""
    if isinstance(cluster_map, (str, bytes)) or not isinstance(cluster_map, Sequence) or len(cluster_map) == 0:
        raise ValueError(f"{source} must be a non-empty list of class indices (one per cluster), got {cluster_map!r}.")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in cluster_map):
        raise ValueError(f"{source} must hold whole class indices >= 0 (one per cluster), got {list(cluster_map)!r}.")
    return [int(v) for v in cluster_map]


def model_fingerprint(model_file: str | os.PathLike) -> dict[str, Any]:
    """``{"size": bytes, "sha256_first_mib": hex}`` of a model file (reads at most its first MiB).

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(model_file)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found: the cluster map belongs to a trained model file.")
    with path.open("rb") as f:
        head = f.read(FINGERPRINT_BYTES)
    return {"size": path.stat().st_size, "sha256_first_mib": hashlib.sha256(head).hexdigest()}


def cluster_map_file(model_file: str | os.PathLike) -> str:
    """The usual place of a model's cluster map: ``<model stem>_cluster_map.json`` beside the model file."""
    path = Path(model_file)
    return str(path.with_name(f"{path.stem}_cluster_map.json"))


def write_cluster_map(path: str | os.PathLike, names: ClusterNames, split: str, model_file: str | os.PathLike,
                      class_names: Sequence[str]) -> Path:
    """Write the naming of ``model_file``'s clusters as JSON, atomically, and return the path.

    The file holds the mapping, the confusion, the pixel accuracy, the split whose masks named the clusters,
    the class names, the model file and its :func:`model_fingerprint`.

    Raises:
        ValueError: ``class_names`` does not give one name per column of the confusion.
        FileNotFoundError: ``model_file`` does not exist.
    """
    num_classes = len(names.confusion[0]) if names.confusion else 0
    if len(class_names) != num_classes:
        raise ValueError(f"write_cluster_map: {len(class_names)} class_names {list(class_names)} for a confusion of "
                         f"{num_classes} classes; give one name per class.")
    content = {"format": MAP_FORMAT, **asdict(names), "split": str(split), "class_names": list(class_names),
               "model_file": str(model_file), "model_fingerprint": model_fingerprint(model_file),
               "note": CLUSTER_NAMING_NOTE}
    return atomic_write_text(json.dumps(content, indent=1) + "\n", path)


def read_cluster_map(path: str | os.PathLike, model_file: str | os.PathLike) -> list[int]:
    """The mapping of a cluster map written by :func:`write_cluster_map` for this ``model_file``.

    Raises:
        FileNotFoundError: no map at ``path`` (run ``evaluate.json`` first, or pass the mapping itself), or no
            ``model_file``.
        ValueError: the file is not a cluster map, or it was made for another model file (fingerprint differs).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"cluster map {path} not found: run evaluate.json first (it names the clusters with the evaluated "
            f"split's masks and writes this file), or pass the mapping itself, e.g. --cluster_map \"[0, 1]\"."
        )
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        mapping = checked_cluster_map(content["mapping"], source=f"the mapping of {path}")
        recorded, made_for = content["model_fingerprint"], content["model_file"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a cluster map written by write_cluster_map ({type(exc).__name__}: {exc}).") from exc
    if recorded != model_fingerprint(model_file):
        raise ValueError(
            f"cluster map {path} was made for the model file {made_for}, not for {model_file} (the fingerprints "
            "differ: retrained or replaced weights); run evaluate.json again for this model to name its clusters."
        )
    return mapping


def resolve_cluster_map(cluster_map: Any, model_file: str | os.PathLike) -> list[int] | None:
    """The inference setting ``cluster_map``: ``None`` (the network outputs classes), a list of class indices,
    a JSON list as text (``"[1, 0]"``, as a command line may pass it) or the path of a cluster map.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_cluster_map` and :func:`checked_cluster_map`.
    """
    if cluster_map is None:
        return None
    if isinstance(cluster_map, str) and cluster_map.strip().startswith("["):
        try:
            cluster_map = json.loads(cluster_map)
        except json.JSONDecodeError as exc:
            raise ValueError(f"`cluster_map` {cluster_map!r} is neither a path nor a JSON list of class indices.") from exc
    if isinstance(cluster_map, (str, os.PathLike)):
        return read_cluster_map(cluster_map, model_file)
    return checked_cluster_map(cluster_map)
