"""Fixtures of the study tests."""

from __future__ import annotations

import importlib

import pytest

bundle_study_module = importlib.import_module("monai_ssl.study.bundle_study")  # the module, not the function


@pytest.fixture()
def plans(monkeypatch):
    """The plans ``bundle_study`` hands to ``run_study`` (nothing runs)."""
    seen = []
    monkeypatch.setattr(bundle_study_module, "run_study", lambda runner, plan, output_dir: seen.append(plan))
    return seen
