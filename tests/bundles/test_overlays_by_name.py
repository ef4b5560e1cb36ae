"""Overlays name the handlers they change: no list index, and on every rank but 0 nothing writes or displays."""

from __future__ import annotations

import json
import re

import pytest

from bundle_helpers import REPO

BUNDLES = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "multi_gpu_train.json").is_file())
# handlers that write files, log lines or draw a progress bar: off on every rank but 0
WRITES_OR_DISPLAYS = {
    "CheckpointSaver", "EncoderExporter", "CollapseMonitor", "StatsHandler", "TensorBoardStatsHandler",
    "ViewGridHandler", "ProgressDisplay", "SegmentationOverlayLogger", "ClassificationReportWriter",
    "SegmentationReportWriter", "ModelSettingsWriter",
}
# handlers every rank runs (resume reads, schedules and validation must stay in step across ranks)
EVERY_RANK = {"ResumeFromCheckpoint", "LrScheduleHandler", "OptimizerSchedules", "ValidationHandler"}
RANK_GATE = "$dist.get_rank() > 0"


def _config(bundle: str, name: str) -> dict:
    return json.loads((REPO / "bundles" / bundle / "configs" / name).read_text())


def _handlers(config: dict) -> dict[str, dict[str, object]]:
    """section ("train", "validate") -> handler name -> its config, for the sections that have handlers."""
    return {section: config[section]["handlers"] for section in ("train", "validate")
            if isinstance(config.get(section), dict) and "handlers" in config[section]}


def test_no_config_refers_to_a_handler_by_position():
    for path in sorted((REPO / "bundles").glob("*/configs/*.json")):
        text = path.read_text()
        assert not re.search(r"handlers#\d", text), f"{path.relative_to(REPO)} refers to a handler by its index"
        for section in _handlers(json.loads(text)).values():
            assert isinstance(section, dict), f"{path.relative_to(REPO)}: handlers must be named (a JSON object)"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_handler_that_writes_or_displays_is_off_on_other_ranks(bundle):
    base, overlay = _config(bundle, "train.json"), _config(bundle, "multi_gpu_train.json")
    for section, handlers in _handlers(base).items():
        for name, handler in handlers.items():
            if isinstance(handler, str):  # a reference, such as the best-model saver gated by save_key_metric
                continue
            kind = handler["_target_"].split(".")[-1]
            key = f"{section}#handlers#{name}#_disabled_"
            if kind in WRITES_OR_DISPLAYS:
                assert overlay.get(key) == RANK_GATE, f"{bundle}: {key} must be {RANK_GATE!r} ({kind})"
            else:
                assert kind in EVERY_RANK, f"{bundle}: classify handler {name!r} ({kind}) in this test"
                assert key not in overlay, f"{bundle}: {name!r} ({kind}) must run on every rank"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_overlay_names_only_handlers_that_exist(bundle):
    handlers = _handlers(_config(bundle, "train.json"))
    for key in _config(bundle, "multi_gpu_train.json"):
        parts = key.split("#")
        if len(parts) > 2 and parts[1] == "handlers":
            assert parts[2] in handlers.get(parts[0], {}), f"{bundle}: {key} names no handler of train.json"
