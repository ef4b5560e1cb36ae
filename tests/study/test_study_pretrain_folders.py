"""Pre-training folders: their paths, the mode read from the layout, and a move that survives being killed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_ssl.study.pretrain_folders import (
    MOVING_PREFIX,
    PER_METHOD_KEY,
    finish_moves,
    move_into_method_folder,
    pretrain_dir,
    pretraining_mode,
    pretraining_name,
)


def test_pretrain_dir_and_name(tmp_path):
    assert pretrain_dir(tmp_path, None, 3, shared=False) == tmp_path / "pretrain" / "seed_3"
    assert pretrain_dir(tmp_path, None, 0, shared=True) == tmp_path / "pretrain"
    assert pretrain_dir(tmp_path, "dino", 3, shared=False) == tmp_path / "pretrain" / "dino" / "seed_3"
    assert pretrain_dir(tmp_path, "dino", 0, shared=True) == tmp_path / "pretrain" / "dino"
    assert pretraining_name(None, 2) == "seed 2" and pretraining_name("cass", 2) == "cass, seed 2"


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")


@pytest.mark.parametrize("files, per_method, mode", [
    ([], False, None),
    ([], True, None),
    (["seed_0/cell.json", "seed_1/models/encoder.pt"], False, False),
    (["cell.json", "models/encoder.pt"], False, True),
    (["byol/seed_0/cell.json", "dino/seed_1/cell.json"], True, False),
    (["byol/cell.json", "dino/models/encoder.pt"], True, True),
    (["byol/seed_0/cell.json"], False, True),  # read as the old layout, a method folder is not a seed's
])
def test_the_mode_is_read_from_the_layout(tmp_path, files, per_method, mode):
    (tmp_path / "pretrain").mkdir()
    if per_method:
        (tmp_path / "pretrain" / "empty_method").mkdir()  # a method folder without a run starts nothing
    for name in files:
        _touch(tmp_path / "pretrain" / name)
    assert pretraining_mode(tmp_path, per_method) is mode


def test_move_and_a_move_killed_halfway_is_finished(tmp_path):
    settings = tmp_path / "study_settings.json"
    settings.write_text(json.dumps({"num_epochs": 2}))
    _touch(tmp_path / "pretrain" / "seed_0" / "models" / "encoder.pt")
    move_into_method_folder(tmp_path, "byol", settings)
    assert (tmp_path / "pretrain" / "byol" / "seed_0" / "models" / "encoder.pt").is_file()
    assert sorted(p.name for p in (tmp_path / "pretrain").iterdir()) == ["byol"]
    assert json.loads(settings.read_text()) == {"num_epochs": 2, PER_METHOD_KEY: True}

    # killed after pretrain/ became the staging folder, before the settings or the last rename
    other = tmp_path / "other"
    _touch(other / f"{MOVING_PREFIX}byol" / "cell.json")
    (other / "study_settings.json").write_text(json.dumps({"num_epochs": 2}))
    assert finish_moves(other, other / "study_settings.json") == ["byol"]
    assert (other / "pretrain" / "byol" / "cell.json").is_file() and not (other / f"{MOVING_PREFIX}byol").exists()
    assert json.loads((other / "study_settings.json").read_text())[PER_METHOD_KEY] is True
    assert finish_moves(other, other / "study_settings.json") == []  # nothing left to do
