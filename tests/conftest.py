"""Shared test fixtures: tiny networks and data so unit tests run in seconds on 2 CPU cores."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from helpers import TinyEncoder


@pytest.fixture
def tiny_encoder() -> TinyEncoder:
    torch.manual_seed(0)
    return TinyEncoder()


@pytest.fixture(scope="module")
def one_intra_op_thread():
    """Train and infer in this process on one intra-op thread, for the module's tests.

    On 2 CPU cores shared with other work, SwinUNETR's backward pass on 2 OpenMP threads is some 30x
    slower than on one (each thread waits on the busy core); no assertion depends on the thread count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _propagate_monai_ssl_logs():
    """Let caplog see the package's log records, and undo what a bundle run's logging set-up did."""
    logger = logging.getLogger("monai_ssl")
    logger.propagate = True
    yield
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` without CUDA, unless ``MONAI_SSL_TEST_DEVICE=cpu`` asks for a CPU dry run."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    requested = os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda")  # TEST_DEVICE_ENV of tests/bundles/bundle_helpers.py
    if not gpu_items or requested == "cpu" or (requested == "cuda" and torch.cuda.is_available()):
        return
    if requested != "cuda":
        raise pytest.UsageError(f"MONAI_SSL_TEST_DEVICE must be 'cuda' or 'cpu', got {requested!r}")
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_items:
        item.add_marker(skip)
