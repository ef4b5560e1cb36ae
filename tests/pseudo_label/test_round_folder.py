"""A round's folder, the overrides of its run and its training items read back from ``datalist.json``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pseudo_label_helpers import make_items

from monai_ssl.pseudo_label import ROUND_KEYS, RoundFolder, round_overrides, round_training_items
from monai_ssl.pseudo_label.inputs import check_settings
from monai_ssl.pseudo_label.round_datalist import read_selection, write_round_datalist, write_selection


def test_round_overrides_put_the_run_in_its_folder(tmp_path):
    folder = RoundFolder.of(tmp_path, 2)
    assert folder.root == tmp_path / "round_2" and folder.model == tmp_path / "round_2" / "model.pt"
    start = tmp_path / "round_1.pt"
    overrides = round_overrides(folder, 2, resume=False, best_epoch_per_round=False, initial_state=start)
    assert set(overrides) <= set(ROUND_KEYS)
    assert overrides["ckpt_dir"] == str(folder.root) and overrides["checkpoint_dir"] == str(folder.checkpoints)
    assert overrides["model_file"] == overrides["deploy_model_file"] == str(folder.model)
    assert overrides["output_dir"] == str(folder.runs) and overrides["run_name"] == "round_2"
    assert overrides["round_datalist"] == str(folder.datalist) and overrides["round_initial_state"] == str(start)
    assert overrides["resume"] is overrides["trainer_resume"] is False and overrides["validate_every_epoch"] is True
    assert overrides["train#handlers#validation#interval"] == "@max_epochs"  # validated once, after the last epoch
    assert overrides["train#handlers#initial_state"]["_target_"] == "CheckpointLoader"

    best = round_overrides(folder, 2, resume=True, best_epoch_per_round=True, initial_state=None)
    assert best["train#handlers#validation#interval"] == 1 and best["trainer_resume"] is True
    assert "train#handlers#initial_state" not in best and "round_initial_state" not in best


def test_a_folder_is_prepared_by_its_datalist_and_cleared_whole(tmp_path):
    folder = RoundFolder.of(tmp_path, 0)
    assert not folder.is_prepared() and not folder.has_checkpoint()
    (folder.checkpoints).mkdir(parents=True)
    (folder.checkpoints / "checkpoint_epoch=1.pt").write_bytes(b"x")
    write_round_datalist(folder.datalist, ["a"], [])
    assert folder.is_prepared() and folder.has_checkpoint()
    folder.clear()
    assert not folder.root.exists()


def test_training_items_come_from_the_runs_own_lists(tmp_path):
    labeled, unlabeled = make_items(4, "l", 0), make_items(6, "u", 1, flip=True)
    path = tmp_path / "datalist.json"
    pseudo_labels = [{"id": "u004", "label": 1}, {"id": "u001", "label": 1}]
    written = write_round_datalist(path, ["l001", "l000", "l002", "l003"], pseudo_labels)
    assert json.loads(path.read_text()) == written
    items = round_training_items(path, labeled, unlabeled)
    assert [x["id"] for x in items] == ["l001", "l000", "l002", "l003", "u004", "u001"]
    assert [x["pseudo"] for x in items] == [False] * 4 + [True] * 2
    assert items[5]["label"].dtype == np.int64 and items[5]["label"].shape == ()
    assert int(items[5]["label"]) == 1 and int(unlabeled[1]["label"]) == 0  # the predicted class, not the carried one
    assert items[4]["image"] is unlabeled[4]["image"]  # in-memory images travel as they are

    with pytest.raises(ValueError, match="another labeled set"):
        round_training_items(path, labeled[:3], unlabeled)
    write_round_datalist(path, [x["id"] for x in labeled], [{"id": "u999", "label": 0}])
    with pytest.raises(ValueError, match="u999"):
        round_training_items(path, labeled, unlabeled)
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a round datalist"):
        round_training_items(path, labeled, unlabeled)


def test_a_selection_reads_back_as_written(tmp_path):
    chosen = [("u1", 1, 0.9312345678901234), ("u0", 0, 0.5)]
    write_selection(tmp_path / "selection.json", chosen, 1.25)
    assert read_selection(tmp_path / "selection.json") == (chosen, 1.25)


def test_settings_may_not_set_what_the_rounds_set():
    assert check_settings(None, ROUND_KEYS) == {}
    assert check_settings({"batch_size": 4}, ROUND_KEYS) == {"batch_size": 4}
    with pytest.raises(ValueError, match=r"\['output_dir'\]"):
        check_settings({"output_dir": "x"}, ROUND_KEYS)
    with pytest.raises(TypeError):
        check_settings([("batch_size", 4)], ROUND_KEYS)
