"""The settings a model was trained with, kept beside its weights, so that evaluation and inference use them.

A model trained at ``working_size 96`` and evaluated at the default 480 scores far worse, with no
error. The training run writes ``<model>.settings.json`` next to the weights it selects
(:class:`~monai_ssl.handlers.ModelSettingsWriter`): the preprocessing and network settings
(working/image size, patch size, channels, normalisation, network choice and sizes). ``evaluate.json``
and ``inference.json`` take their defaults from it (:func:`model_setting`) and refuse a command-line
value that contradicts it, naming both (:func:`check_model_settings`). The weights file itself stays
a plain ``state_dict``, which every MONAI tool loads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from monai_ssl.utils.atomic import atomic_torch_save, atomic_write_text

__all__ = [
    "check_model_settings",
    "model_setting",
    "publish_model",
    "read_model_settings",
    "settings_file",
    "write_model_settings",
]

logger = logging.getLogger("monai_ssl")


def settings_file(model_file: str | os.PathLike) -> Path:
    """``models/model.pt`` -> ``models/model.settings.json``."""
    return Path(model_file).with_suffix(".settings.json")


def write_model_settings(model_file: str | os.PathLike, settings: Mapping[str, Any]) -> Path:
    """Write ``settings`` (JSON values) beside ``model_file``, atomically; returns the file."""
    text = json.dumps(dict(settings), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(text + "\n", settings_file(model_file))


def read_model_settings(model_file: str | os.PathLike) -> dict[str, Any]:
    """The settings saved with ``model_file``; ``{}`` (with one log line) for a model saved without them.

    Raises:
        ValueError: the settings file exists but is not a JSON object.
    """
    path = settings_file(model_file)
    if not path.is_file():
        logger.info(f"{model_file} has no settings file ({path.name}): the config's settings are used")
        return {}
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it to use the config's settings.") from err
    if not isinstance(settings, dict):
        raise ValueError(f"{path} must hold a JSON object of settings, got {type(settings).__name__}.")
    return settings


def model_setting(settings: Mapping[str, Any], key: str, default: Any) -> Any:
    """The model's value of ``key``, or ``default`` (the config's) when the model does not say."""
    return settings.get(key, default)


def check_model_settings(settings: Mapping[str, Any], model_file: str | os.PathLike, **given: Any) -> None:
    """Refuse values that contradict the settings ``model_file`` was trained with.

    Raises:
        ValueError: naming each setting, the value given and the model's.
    """
    clashes = [f"{key}={value!r} (the model was trained with {key}={settings[key]!r})"
               for key, value in given.items() if key in settings and settings[key] != value]
    if clashes:
        raise ValueError(
            f"{model_file}: {'; '.join(clashes)}. Leave these settings out to use the model's, or evaluate a model "
            "trained with them."
        )


def publish_model(model_file: str | os.PathLike, deploy_file: str | os.PathLike, enabled: bool = True) -> Path | None:
    """Copy the weights of ``model_file`` (read with ``weights_only``) and its settings file to ``deploy_file``,
    each atomically; nothing when not ``enabled``."""
    if not enabled:
        return None
    published = atomic_torch_save(torch.load(model_file, map_location="cpu", weights_only=True), deploy_file)
    if settings_file(model_file).is_file():
        atomic_write_text(settings_file(model_file).read_text(), settings_file(deploy_file))
    return published
