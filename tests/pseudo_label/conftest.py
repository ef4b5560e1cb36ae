"""Fresh records of the tiny config's test handlers for every test."""

from __future__ import annotations

import pytest
from pseudo_label_helpers import KILL_AT, STARTS, VALIDATIONS


@pytest.fixture(autouse=True)
def _fresh_round_records():
    STARTS.clear()
    VALIDATIONS.clear()
    KILL_AT.clear()
    yield
    KILL_AT.clear()
