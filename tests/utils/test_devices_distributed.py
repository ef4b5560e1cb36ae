"""Device defaults and the multi-GPU steps, as a process without a process group (and without CUDA here) sees them."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.data import dataset_or_demo
from monai_ssl.metrics import key_metric, other_metrics
from monai_ssl.networks import trainable_parameters
from monai_ssl.transforms import NormalizeRedChanneld, dermoscopy_intensity
from monai_ssl.utils import (
    close_writer,
    ddp_device_ids,
    default_amp_dtype,
    default_device,
    default_sync_interval,
    destroy_distributed,
    disabled_unless,
    dist_backend,
    local_device,
    publish_model,
    rank_zero_writer,
    set_local_cuda_device,
)

cuda = torch.cuda.is_available()


def test_device_defaults_follow_the_machine():
    assert default_device() == torch.device("cuda:0" if cuda else "cpu")
    assert default_sync_interval() == (20 if cuda else 1)
    assert default_amp_dtype() in ("bfloat16", "float16")
    if not cuda:
        assert default_amp_dtype() == "bfloat16"


def test_distributed_steps_without_a_process_group(tmp_path):
    assert dist_backend() == ("nccl" if cuda else "gloo")
    assert local_device().type == ("cuda" if cuda else "cpu")
    assert ddp_device_ids(torch.device("cpu")) is None
    assert ddp_device_ids(torch.device("cuda:1")) == [torch.device("cuda:1")]
    set_local_cuda_device(torch.device("cpu"))  # nothing to do on the CPU
    writer = rank_zero_writer(str(tmp_path / "runs"))  # rank 0 when no group exists
    assert writer is not None
    close_writer(writer)
    close_writer(None)
    destroy_distributed()  # no group: nothing to destroy
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))


def test_dataset_or_demo_makes_the_demo_only_in_the_bundles_demo_folder(tmp_path):
    made = []
    make = lambda root, **kw: made.append((root, kw)) or root  # noqa: E731
    assert dataset_or_demo(tmp_path / "mine", tmp_path / "demo", make, n=2) == tmp_path / "mine" and made == []
    assert dataset_or_demo(tmp_path / "demo", tmp_path / "demo", make, n=2) == tmp_path / "demo"
    assert made == [(tmp_path / "demo", {"n": 2})]


def test_key_and_other_metrics():
    metrics = {"val_auc": 1, "val_accuracy": 2}
    assert key_metric(metrics, "val_auc") == {"val_auc": 1} and other_metrics(metrics, "val_auc") == {"val_accuracy": 2}
    with pytest.raises(KeyError, match="val_f1"):
        key_metric(metrics, "val_f1")


def test_trainable_parameters_leave_out_frozen_ones():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    net[0].requires_grad_(False)
    assert [p.shape for p in trainable_parameters(net)] == [torch.Size([1, 2]), torch.Size([1])]


def test_dermoscopy_intensity_and_disabled_unless():
    assert len(dermoscopy_intensity(False)) == 1
    both = dermoscopy_intensity(True)
    assert len(both) == 2 and isinstance(both[1], NormalizeRedChanneld)
    assert disabled_unless(True) is False and disabled_unless(False) is True
    with pytest.raises(ValueError, match="true or false"):
        disabled_unless("false")


def test_publish_model_copies_weights_only_when_enabled(tmp_path):
    source = tmp_path / "best.pt"
    torch.save({"w": torch.ones(2)}, source)
    assert publish_model(source, tmp_path / "model.pt", enabled=False) is None and not (tmp_path / "model.pt").exists()
    publish_model(source, tmp_path / "model.pt")
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["w"], torch.ones(2))
