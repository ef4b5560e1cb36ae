"""Write the settings of the run beside the model it selects (see :mod:`monai_ssl.networks.model_settings`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from monai_ssl.networks.model_settings import read_model_settings, settings_file, write_model_settings

__all__ = ["ModelSettingsWriter"]


class ModelSettingsWriter:
    """After each validation, write ``settings`` beside ``model_file`` once that file exists.

    List it after the best-model saver in the evaluator's handlers: the settings then follow the
    weights of this run as soon as they are written (the settings of one run do not change).

    Args:
        model_file: the selected model's weights (``models/model.pt``).
        settings: JSON values: the preprocessing and network settings the model needs.
    """

    def __init__(self, model_file: str | os.PathLike, settings: Mapping[str, Any]) -> None:
        self.model_file = Path(model_file)
        self.settings = dict(settings)
        json.dumps(self.settings, allow_nan=False)  # fails at start on settings that are not JSON, not after an epoch

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if not engine.has_event_handler(self, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        if not self.model_file.is_file():
            return
        path = settings_file(self.model_file)
        stale = not path.is_file() or path.stat().st_mtime_ns < self.model_file.stat().st_mtime_ns
        if stale or read_model_settings(self.model_file) != self.settings:
            write_model_settings(self.model_file, self.settings)
