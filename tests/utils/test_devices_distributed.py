"""Device defaults and the multi-GPU steps, as a process without a process group (and without CUDA here) sees them."""

from __future__ import annotations

import torch

from monai_ssl.utils import (
    close_writer,
    ddp_device_ids,
    default_amp_dtype,
    default_device,
    default_sync_interval,
    destroy_distributed,
    dist_backend,
    local_device,
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
