"""The default number of loader workers: this process's share of the cores, less one."""

from __future__ import annotations

import monai_ssl.utils.workers as workers
from monai_ssl.utils import default_num_workers


def test_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(workers, "available_cores", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_num_workers() == 15
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: 4 processes on this machine share the cores
    assert default_num_workers() == 3
    monkeypatch.setattr(workers, "available_cores", lambda: 128)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert default_num_workers() == 16 and default_num_workers(max_workers=32) == 32
    monkeypatch.setattr(workers, "available_cores", lambda: 1)
    assert default_num_workers() == 0
    monkeypatch.setattr(workers, "available_cores", lambda: 2)
    assert default_num_workers() == 1
