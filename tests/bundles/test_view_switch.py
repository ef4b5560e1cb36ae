"""The BYOL bundles' views switch (``--views``), decoded-image cache and worker default, on tiny data.

``--views batched`` runs the GPU path (parameters in the workers, views made for the batch on the
training device) on the CPU; on a GPU the default ``auto`` picks it (``tests/bundles/test_gpu_bundles.py``).
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
from monai.bundle import ConfigParser, run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import monai_ssl.engines.device_views as device_views
from bundle_helpers import BYOLMED2D, OCT, TINY, TINY_2D, error_messages
from monai_ssl.data import make_oct_demo
from monai_ssl.utils import default_num_workers


def _losses(run_dir) -> list[float]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars("byol/loss")]


def test_byolmed2d_pretrains_with_batched_views(tmp_path, tiny_mrnet):
    run(config_file=str(BYOLMED2D / "train.json"), bundle_root=str(tmp_path), dataset_dir=str(tiny_mrnet),
        **{**TINY, "num_epochs": 2}, views="batched", sync_interval=2)
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=2.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 6
    assert "backbone.conv1.weight" in torch.load(tmp_path / "models" / "encoder.pt", weights_only=True)
    losses = _losses(tmp_path / "runs" / "pretrain")
    assert len(losses) == 3 and all(math.isfinite(v) and 0.0 <= v <= 8.0 for v in losses)  # logged every 2nd iteration


def test_oct_pretrains_with_batched_views_a_working_size_and_a_cache(tmp_path):
    data = make_oct_demo(tmp_path / "OCT2017", n_train_per_class=6, n_test_per_class=1, seed=3)
    root = tmp_path / "bundle"
    run(config_file=str(OCT / "train.json"), bundle_root=str(root), dataset_dir=str(data),
        **{**TINY_2D, "num_epochs": 2}, views="batched", working_size=48, cache_rate=1.0)
    checkpoint = torch.load(root / "models" / "pretrain" / "checkpoint_epoch=2.pt", weights_only=True)
    assert checkpoint["trainer"]["epoch_length"] >= 2 and checkpoint["trainer"]["iteration"] == 2 * checkpoint["trainer"]["epoch_length"]
    assert (root / "models" / "encoder.pt").is_file() and (root / "models" / "projector.pt").is_file()
    assert all(math.isfinite(v) for v in _losses(root / "runs" / "pretrain"))


@pytest.mark.parametrize("config", [BYOLMED2D, OCT], ids=["byolmed2d", "oct"])
def test_config_defaults_pick_the_path_by_device(config):
    parser = ConfigParser()
    parser.read_config(str(config / "train.json"))
    parser["dataset_dir"] = "unused"
    assert parser["views"] == "auto"
    assert parser.get_parsed_content("views_on_device") is torch.cuda.is_available()
    assert parser.get_parsed_content("num_workers") == default_num_workers()
    assert parser.get_parsed_content("cache_rate") == 0.0
    assert parser.get_parsed_content("amp_dtype") in ("bfloat16", "float16")
    prepare = parser.get_parsed_content("train#prepare_batch")
    assert type(prepare).__name__ == ("DeviceViews" if torch.cuda.is_available() else "function")


def test_gpu_views_without_cuda_fall_back_with_one_warning(tmp_path, tiny_mrnet, caplog, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("checks the fallback on a machine without CUDA")
    monkeypatch.setattr(device_views, "_FELL_BACK", False)
    logger = logging.getLogger("monai_ssl")  # the bundle's logging set-up stops propagation to caplog's root handler
    logger.addHandler(caplog.handler)
    try:
        run(config_file=str(BYOLMED2D / "train.json"), bundle_root=str(tmp_path), dataset_dir=str(tiny_mrnet), **TINY, views="gpu")
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [r.getMessage() for r in caplog.records if "--views gpu" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert (tmp_path / "models" / "encoder.pt").is_file()


def test_unknown_views_value_is_named(tmp_path, tiny_mrnet):
    with pytest.raises(Exception) as info:
        run(config_file=str(BYOLMED2D / "train.json"), bundle_root=str(tmp_path), dataset_dir=str(tiny_mrnet), **TINY, views="fast")
    assert any("--views must be one of 'auto', 'gpu', 'cpu' or 'batched', got 'fast'" in m for m in error_messages(info.value))
