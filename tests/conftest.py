"""Shared test fixtures: tiny networks and data so unit tests run in seconds on 2 CPU cores."""

from __future__ import annotations

import logging

import pytest
import torch

from helpers import TinyEncoder


@pytest.fixture
def tiny_encoder() -> TinyEncoder:
    torch.manual_seed(0)
    return TinyEncoder()


@pytest.fixture(autouse=True)
def _propagate_monai_ssl_logs():
    """Let caplog see the package's log records, and undo what a bundle run's logging set-up did."""
    logger = logging.getLogger("monai_ssl")
    logger.propagate = True
    yield
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
