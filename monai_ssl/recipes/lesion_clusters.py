"""The cluster-to-class map of the bundle's architectures whose outputs are clusters (PiCIE), for evaluation and
inference; nothing for those whose outputs are classes.

``evaluate.json`` names the clusters on the evaluated split's masks before its report pass
(:func:`lesion_cluster_names`: the Hungarian match of Cho et al. and their reference code), writes the map
beside the model (:func:`~monai_ssl.recipes.cluster_map_file`) and reports it; ``inference.json`` reads that
map, or a map the user gives (``--cluster_map "[1, 0]"``), through :func:`inference_cluster_map`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .cluster_naming import ClusterNames, cluster_map_file, name_clusters, resolve_cluster_map, write_cluster_map
from .lesion_networks import lesion_outputs_clusters

__all__ = ["cluster_mapping", "cluster_report_entries", "inference_cluster_map", "lesion_cluster_names"]


def lesion_cluster_names(
    architecture: str,
    network: nn.Module,
    dataloader: Any,
    inferer: Callable,
    postprocessing: Callable,
    num_clusters: int,
    num_classes: int,
    device: str | torch.device,
    amp: bool = False,
    split: str = "",
    model_file: str = "",
    class_names: Sequence[str] | None = None,
) -> ClusterNames | None:
    """Name the clusters of a cluster architecture on ``dataloader``'s masks and write the map beside ``model_file``.

    ``None`` (nothing run) for an architecture whose outputs are classes. See
    :func:`~monai_ssl.recipes.name_clusters` for the pass (``postprocessing`` is the report's chain without a map)
    and :func:`~monai_ssl.recipes.write_cluster_map` for the file, which inference reads.

    Raises:
        ValueError: an item of the split without a mask (naming needs them; inference does not).
    """
    if not lesion_outputs_clusters(architecture):
        return None
    names = name_clusters(network, dataloader, inferer, postprocessing, num_clusters, num_classes, device, amp=amp)
    if model_file:
        classes = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
        write_cluster_map(cluster_map_file(model_file), names, split, model_file, classes)
    return names


def cluster_mapping(names: ClusterNames | None) -> list[int] | None:
    """The cluster -> class list of ``names`` (``None`` for an architecture whose outputs are classes)."""
    return None if names is None else list(names.mapping)


def cluster_report_entries(names: ClusterNames | None) -> dict[str, Any]:
    """What the evaluation report adds: the map, the confusion, and the note that masks only named the clusters."""
    return {} if names is None else dict(names.summary())


def inference_cluster_map(architecture: str, cluster_map: Any, model_file: str) -> list[int] | None:
    """The map inference applies: ``None`` for an architecture whose outputs are classes; for a cluster
    architecture the user's ``cluster_map`` (a list, ``"[1, 0]"`` or a map file), else the map evaluation wrote
    beside ``model_file``.

    Raises:
        FileNotFoundError: no map given and none beside the model (run evaluate.json first, or pass one).
        ValueError: a malformed map, or one made for another model file.
    """
    if not lesion_outputs_clusters(architecture):
        return None
    return resolve_cluster_map(cluster_map_file(model_file) if cluster_map is None else cluster_map, model_file)
