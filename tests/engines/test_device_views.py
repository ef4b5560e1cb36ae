"""``DeviceViews`` (the GPU path's ``prepare_batch``), the views switch, and BYOL trained with batched views."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, ScaleIntensityd
from monai.utils import set_determinism

import monai_ssl.engines.device_views as device_views
from helpers import TinyEncoder
from monai_ssl.engines import BYOLTrainer, DeviceViews, prepare_views, views_on_device
from monai_ssl.handlers import CollapseMonitor
from monai_ssl.networks import BYOL
from monai_ssl.transforms import (
    BYOLViewParamsd,
    BYOLViewsd,
    CompactUint8d,
    NormalizeRedChanneld,
    normalize_red_channel,
    normalize_red_channel_batch,
)


def _items(n: int = 16, size: int = 40) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    # 8-bit images with structure (a gradient plus noise), as decoded JPEGs give them
    ramp = torch.linspace(0, 200, size).expand(size, size)
    return [{"image": (ramp + 55 * torch.rand(size, size, generator=g)).round()[None], "id": str(i)} for i in range(n)]


def _loader(transforms: list, seed: int = 3) -> DataLoader:
    torch.manual_seed(seed)  # MONAI's DataLoader seeds the transforms from torch's generator when num_workers=0
    return DataLoader(Dataset(_items(), transform=Compose(transforms)), batch_size=8, shuffle=True, drop_last=True, num_workers=0)


def _cpu_views() -> list:
    return [ScaleIntensityd(keys="image", minv=0.0, maxv=1.0), BYOLViewsd(keys="image", spatial_size=24)]


def _device_views() -> list:
    return [CompactUint8d(keys="image"), BYOLViewParamsd(keys="image", spatial_size=24)]


def test_device_views_make_the_views_of_byolviewsd_from_uint8_batches():
    cpu_batch = next(iter(_loader(_cpu_views())))
    gpu_batch = next(iter(_loader(_device_views())))
    assert gpu_batch["image"].dtype == torch.uint8  # a quarter of the float32 copy to the GPU
    view1, view2 = DeviceViews()(gpu_batch, torch.device("cpu"), non_blocking=True, view_keys=("view1", "view2"))
    expected = prepare_views(cpu_batch, "cpu")
    assert view1.shape == view2.shape == (8, 1, 24, 24)
    for got, want in zip((view1, view2), expected):
        assert (got - want).abs().max() < 1e-4


def test_device_views_name_missing_keys():
    with pytest.raises(KeyError, match=r"GPU views need \['view2_params'\].*BYOLViewParamsd"):
        DeviceViews()({"image": torch.zeros(2, 1, 8, 8), "view1_params": torch.zeros(2, 30)}, "cpu")
    with pytest.raises(ValueError, match="two views"):
        DeviceViews(param_keys=("a",))


def _train(transforms: list, prepare_batch, epochs: int = 6) -> tuple[list[float], CollapseMonitor]:
    set_determinism(seed=0)
    network = BYOL(TinyEncoder(), hidden_dim=32, projection_dim=8)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    monitor = CollapseMonitor(threshold=0.1)
    trainer = BYOLTrainer("cpu", epochs, _loader(transforms), network, optimizer, prepare_batch=prepare_batch,
                          train_handlers=[monitor], finite_check_interval=4)
    losses: list[float] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"])))
    trainer.run()
    set_determinism(seed=None)
    return losses, monitor


def test_training_with_batched_views_follows_the_cpu_views_curve():
    """Same seed: the same views, so the same loss curve; it decreases, with no NaN and no collapse."""
    gpu_losses, gpu_monitor = _train(_device_views(), DeviceViews())
    cpu_losses, _ = _train(_cpu_views(), prepare_views)
    assert len(gpu_losses) == len(cpu_losses) == 12
    assert all(torch.isfinite(torch.tensor(gpu_losses)))
    assert gpu_losses == pytest.approx(cpu_losses, rel=1e-3, abs=1e-3)
    assert sum(gpu_losses[-3:]) < sum(gpu_losses[:3])
    assert gpu_monitor.warnings == 0  # collapse signal in range every epoch


def test_views_switch(caplog, monkeypatch):
    monkeypatch.setattr(device_views, "_FELL_BACK", False)
    assert views_on_device("auto", "cpu") is False and views_on_device("cpu", "cpu") is False
    assert views_on_device("batched", "cpu") is True
    assert views_on_device("auto", torch.device("cuda:0")) is True and views_on_device("GPU", "cuda") is True
    assert views_on_device("cpu", "cuda") is False
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert views_on_device("gpu", "cpu") is False
        assert views_on_device("gpu", "cpu") is False
    warnings = [r.getMessage() for r in caplog.records if "--views gpu" in r.getMessage()]
    assert len(warnings) == 1 and "on the CPU in the loader workers" in warnings[0]
    with pytest.raises(ValueError, match="'auto', 'gpu', 'cpu' or 'batched'"):
        views_on_device("fast", "cpu")


# ---------------------------------------------------------------- the red channel standardized on the device
def _rgb_loader(transforms: list, seed: int = 3) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 200, 40).expand(40, 40)
    items = [{"image": (ramp + 55 * torch.rand(3, 40, 40, generator=g)).round(), "id": str(i)} for i in range(8)]
    torch.manual_seed(seed)
    return DataLoader(Dataset(items, transform=Compose(transforms)), batch_size=4, shuffle=False, num_workers=0)


def test_normalize_red_channel_batch_equals_the_per_image_transform():
    g = torch.Generator().manual_seed(0)
    batch = torch.rand(4, 3, 6, 5, generator=g) * torch.tensor([2.0, 1.0, 0.5]).view(1, 3, 1, 1)
    batch[2, 0] = 0.25  # a constant red channel becomes 0 (std clamped to eps)
    out = normalize_red_channel_batch(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    for i in range(4):
        assert torch.equal(out[i], normalize_red_channel(batch[i]))
    assert torch.equal(out[:, 1:], batch[:, 1:]) and torch.equal(out[2, 0], torch.zeros(6, 5))
    # hand-computed: red 0, 1, 2, 3 -> mean 1.5, population std sqrt(1.25)
    tiny = torch.zeros(1, 3, 2, 2)
    tiny[0, 0] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = (torch.tensor([[0.0, 1.0], [2.0, 3.0]]) - 1.5) / 1.25 ** 0.5
    assert torch.allclose(normalize_red_channel_batch(tiny)[0, 0], expected, atol=1e-7)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 4, 4\).*3 channels"):
        normalize_red_channel_batch(torch.zeros(2, 1, 4, 4))


def test_device_views_standardize_red_after_the_augmentation_as_the_cpu_path_does():
    cpu = [ScaleIntensityd(keys="image", minv=0.0, maxv=1.0), BYOLViewsd(keys="image", spatial_size=24),
           NormalizeRedChanneld(keys=["view1", "view2"])]
    expected = prepare_views(next(iter(_rgb_loader(cpu))), "cpu")
    batch = next(iter(_rgb_loader(_device_views())))
    plain = DeviceViews()(batch, torch.device("cpu"))
    red = DeviceViews(normalize_red=True)(batch, torch.device("cpu"))
    for got, want, raw in zip(red, expected, plain):
        assert got.shape == (4, 3, 24, 24)
        assert (got - want).abs().max() < 1e-3  # the CPU path: views, then NormalizeRedChanneld per image
        assert torch.equal(got[:, 1:], raw[:, 1:])  # green and blue untouched
        for i in range(4):  # the red channel of each view: zero mean, unit std (same formula as the CPU transform)
            assert torch.equal(got[i], normalize_red_channel(raw[i]))
        assert float(got[:, 0].mean()) == pytest.approx(0.0, abs=1e-5)


def test_device_views_refuse_red_normalisation_of_grey_images():
    batch = next(iter(_loader(_device_views())))
    with pytest.raises(ValueError, match=r"normalize_red=True .* shape \(8, 1, 24, 24\)"):
        DeviceViews(normalize_red=True)(batch, "cpu")
