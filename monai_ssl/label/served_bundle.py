"""What MONAI Label needs to know about a bundle before serving it: its inference config, kind, labels and weights.

Nothing here imports MONAI Label: the app (``apps/monai_ssl``) and the tests read bundles with it, and a
bundle that cannot be served (no ``configs/inference.json``, no ``models/model.pt``, weights that do not
fit ``network_def``) becomes a :class:`BundleNotServable` whose message the app lists at start-up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from monai_ssl.networks import SegmentationPair, load_weights

__all__ = ["BundleNotServable", "ServedBundle", "discover_bundles", "read_served_bundle"]

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"


class BundleNotServable(Exception):
    """A bundle folder that MONAI Label cannot serve; the message says why and how to fix it."""


@dataclass
class ServedBundle:
    """A bundle ready to be served.

    Attributes:
        name: the folder name, which is the model's name in MONAI Label.
        path: the bundle folder (absolute); ``bundle_root`` of every config parsed from it.
        kind: ``"segmentation"`` or ``"classification"`` (from ``metadata.json``'s output ``format``).
        class_names: the output channels' names in channel order (``channel_def``); a classifier with a
            single logit gets ``["negative", <finding>]``, the two columns of its probabilities.
        dimension: 2 or 3, the length of the input's ``spatial_shape``.
        description: ``metadata.json``'s description.
        version: ``metadata.json``'s version.
        model_file: ``<path>/models/model.pt``.
        num_outputs: the network's output channels (1 for a single-logit binary classifier).
        is_pair: the network is a :class:`~monai_ssl.networks.SegmentationPair` (cross-teaching), whose
            two members can be asked to disagree.
        metadata: ``metadata.json`` as read.
    """

    name: str
    path: Path
    kind: str
    class_names: list[str]
    dimension: int
    description: str
    version: str
    model_file: Path
    num_outputs: int = 0
    is_pair: bool = False
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> dict[str, int]:
        """MONAI Label's ``labels``: name -> channel index, background left out for segmentation."""
        return {n: i for i, n in enumerate(self.class_names) if not (self.kind == SEGMENTATION and n == "background")}

    def config(self, name: str = "inference.json", **overrides: Any) -> ConfigParser:
        """A parser of ``configs/<name>`` with ``bundle_root`` set to this folder (and ``overrides`` applied)."""
        parser = ConfigParser()
        parser.read_config(str(self.path / "configs" / name))
        parser.update({"bundle_root": str(self.path), **overrides})
        return parser


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise BundleNotServable(f"{path} is missing.") from err
    except (OSError, json.JSONDecodeError) as err:
        raise BundleNotServable(f"{path} cannot be read as JSON ({err}).") from err


def _output_format(metadata: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(image input, pred output)`` entries of ``network_data_format``."""
    try:
        fmt = metadata["network_data_format"]
        image = next(iter(fmt["inputs"].values()))
        pred = next(iter(fmt["outputs"].values()))
    except (KeyError, StopIteration, AttributeError) as err:
        raise BundleNotServable(
            f"{path} has no network_data_format with one input and one output (the MONAI bundle spec)."
        ) from err
    return image, pred


def read_served_bundle(path: str | os.PathLike, check_weights: bool = True) -> ServedBundle:
    """Read a bundle folder and check it can be served.

    The kind comes from the output's ``format`` in ``metadata.json`` (``"classes"`` is a classifier,
    anything else a segmentation), not from the folder's name as MONAI Label's stock app guesses it.

    Args:
        path: the bundle folder (holding ``configs/`` and ``models/``).
        check_weights: build ``network_def`` and load ``models/model.pt`` into it (strict), so that a
            stale or foreign weights file is reported at start-up rather than at the first request.

    Raises:
        BundleNotServable: the message names the missing or unreadable file and what to run.
    """
    path = Path(path).resolve()
    name = path.name
    if not (path / "configs" / "inference.json").is_file():
        raise BundleNotServable(f"{path} has no configs/inference.json.")
    metadata = _read_json(path / "configs" / "metadata.json")
    image, pred = _output_format(metadata, path / "configs" / "metadata.json")
    kind = CLASSIFICATION if pred.get("format") == "classes" else SEGMENTATION
    channel_def = pred.get("channel_def") or {}
    class_names = [str(channel_def[k]) for k in sorted(channel_def, key=int)]
    num_outputs = len(class_names)
    if not class_names:
        raise BundleNotServable(f"{path / 'configs' / 'metadata.json'}: the output has no channel_def (label names).")
    if kind == CLASSIFICATION and len(class_names) == 1:
        class_names = ["negative", class_names[0]]
    spatial_shape = image.get("spatial_shape") or []
    bundle = ServedBundle(
        name=name,
        path=path,
        kind=kind,
        class_names=class_names,
        dimension=len(spatial_shape) if spatial_shape else 3,
        description=str(metadata.get("description", "")),
        version=str(metadata.get("version", "")),
        model_file=path / "models" / "model.pt",
        num_outputs=num_outputs,
        metadata=metadata,
    )
    if not bundle.model_file.is_file():
        raise BundleNotServable(
            f"no trained weights: {bundle.model_file} does not exist. Train the bundle first "
            f"(see bundles/{name}/docs/README.md), then restart the server."
        )
    network = _build_network(bundle)
    bundle.is_pair = isinstance(network, SegmentationPair)
    if check_weights:
        _check_weights(bundle, network)
    return bundle


def _build_network(bundle: ServedBundle) -> torch.nn.Module:
    try:
        return bundle.config().get_parsed_content("network_def", instantiate=True)
    except Exception as err:  # a config error of any kind makes the bundle unservable, with its reason
        raise BundleNotServable(f"{bundle.path / 'configs' / 'inference.json'}: network_def cannot be built ({err}).") from err


def _check_weights(bundle: ServedBundle, network: torch.nn.Module) -> None:
    try:
        load_weights(network, bundle.model_file, produced_by=f"bundles/{bundle.name} training")
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise BundleNotServable(str(err)) from err


def discover_bundles(
    bundles_dir: str | os.PathLike, models: str | list[str] = "all", check_weights: bool = True
) -> tuple[dict[str, ServedBundle], dict[str, str]]:
    """Find the servable bundles in ``bundles_dir``.

    Args:
        bundles_dir: a folder of bundle folders (the repository's ``bundles/``).
        models: ``"all"`` (every folder with ``configs/inference.json``), or bundle names, as a list or
            a comma-separated string (MONAI Label's ``--conf models a,b``).
        check_weights: see :func:`read_served_bundle`.

    Returns:
        ``(served, not_loaded)``: name -> :class:`ServedBundle` for those that load, and name -> reason
        for those that do not (a missing folder, missing weights, weights that do not fit).

    Raises:
        FileNotFoundError: ``bundles_dir`` is not a folder.
    """
    root = Path(bundles_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"bundles folder not found: {root} (set it with --conf bundles <folder>).")
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models or models == ["all"]:
        models = sorted(p.name for p in root.iterdir() if (p / "configs" / "inference.json").is_file())
    served: dict[str, ServedBundle] = {}
    not_loaded: dict[str, str] = {}
    for name in models:
        folder = root / name
        if not folder.is_dir():
            available = sorted(p.name for p in root.iterdir() if (p / "configs").is_dir())
            not_loaded[name] = f"no bundle folder {folder} (bundles here: {', '.join(available) or 'none'})."
            continue
        try:
            served[name] = read_served_bundle(folder, check_weights=check_weights)
        except BundleNotServable as err:
            not_loaded[name] = str(err)
    return served, not_loaded
