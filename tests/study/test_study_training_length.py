"""The training length of a study's cells: ``--num_steps`` instead of ``--num_epochs``, the steps each cell trained,
and what the report says; on a tiny bundle that really trains (a linear model, MONAI's SupervisedTrainer)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Engine

from monai_ssl.engines import BYOLTrainer
from monai_ssl.networks import BYOL
from monai_ssl.study import TrainingStepCounter, bundle_study, configs_without_key, describe_training_length

# ten items, of which a label fraction is kept; batches of 3: 50% -> 2 steps an epoch, 100% -> 4
TRAIN = {
    "imports": ["$import os", "$import torch", "$import monai", "$import monai_ssl"],
    "ckpt_dir": "models", "labeled_fraction": 1.0, "seed": 0,
    "num_epochs": None, "num_steps": None, "default_num_epochs": 1,
    "max_epochs": "$monai_ssl.handlers.run_length(@num_epochs, @default_num_epochs, num_steps=@num_steps, "
                  "steps_per_epoch=len(@train#dataloader))",
    "labeled": "$[{'image': torch.ones(2), 'label': torch.ones(1)}] * int(10 * @labeled_fraction)",
    "network": {"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 1},
    "train": {
        "dataloader": {"_target_": "DataLoader", "dataset": {"_target_": "Dataset", "data": "@labeled"},
                       "batch_size": 3},
        "handlers": {},
        "trainer": {"_target_": "SupervisedTrainer", "device": "cpu", "max_epochs": "@max_epochs",
                    "train_data_loader": "@train#dataloader", "network": "@network",
                    "optimizer": "$torch.optim.SGD(@network.parameters(), lr=0.01)",
                    "loss_function": "$torch.nn.MSELoss()", "train_handlers": "$list(@train#handlers.values())"},
    },
    "run": ["$@train#trainer.run()", "$os.makedirs(@ckpt_dir, exist_ok=True)",
            "$torch.save(@network.state_dict(), @ckpt_dir + '/model.pt')"],
}
EVALUATE = {
    "imports": ["$import pathlib"], "output_dir": "eval",
    "run": ["$pathlib.Path(@output_dir).mkdir(parents=True, exist_ok=True)",
            "$pathlib.Path(@output_dir, 'metrics.json').write_text('{\"accuracy\": 0.5}')"],
}
STUDY = {
    "label_budget": {"fraction": {"labeled_fraction": "{fraction}"}},
    "labeled_count_id": "labeled",
    "common_overrides": {"ckpt_dir": "{cell_dir}/models"},
    "evaluate": {"config_file": "evaluate.json", "overrides": {"output_dir": "{cell_dir}/eval"},
                 "metrics_file": "{cell_dir}/eval/metrics.json"},
    "protocols": {"supervised": {"config_file": ["train.json"], "model_file": "{ckpt_dir}/model.pt"}},
    "metrics": {"accuracy": "accuracy"},
}


def _bundle(folder: Path, train: dict | None = None) -> Path:
    (folder / "configs").mkdir(parents=True)
    for name, config in (("train.json", train or TRAIN), ("evaluate.json", EVALUATE), ("study.json", STUDY)):
        (folder / "configs" / name).write_text(json.dumps(config))
    return folder


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def test_num_steps_trains_every_budget_at_least_that_long(tmp_path):
    bundle, out = _bundle(tmp_path / "bundle"), tmp_path / "study"
    run = bundle_study(bundle, out, fractions="0.5,1.0", seeds="0", num_steps=9)
    assert run.failed == 0
    rows = _rows(out)
    # 50%: 5 epochs of 2 steps; 100%: 3 epochs of 4 steps; each at least 9, the last epoch whole
    assert [(r["fraction"], r["n_labeled"], r["steps"]) for r in rows] == [("0.5", "5", "10"), ("1", "10", "12")]
    assert json.loads((out / "cells/supervised/fraction_0.5/seed_0/cell.json").read_text())["steps"] == 10
    settings = json.loads((out / "study_settings.json").read_text())
    assert settings["num_steps"] == 9 and settings["num_epochs"] is None
    text = (out / "results.md").read_text()
    assert "Training length: fixed in optimizer steps, at least 9 per cell (`--num_steps 9`" in text
    assert "Optimizer steps trained per cell: 50% 10; 100% 12." in text

    # the same folder with the length in epochs instead mixes incomparable cells: refused
    with pytest.raises(ValueError, match=r"other settings \(num_epochs: None there, 2 now; num_steps: 9 there, "
                                         r"None now;"):
        bundle_study(bundle, out, fractions="0.5,1.0", seeds="0", num_epochs=2)


def test_num_epochs_trains_a_smaller_budget_fewer_steps_and_says_so(tmp_path):
    bundle, out = _bundle(tmp_path / "bundle"), tmp_path / "study"
    bundle_study(bundle, out, fractions="0.5,1.0", seeds="0", num_epochs=2)
    assert [r["steps"] for r in _rows(out)] == ["4", "8"]
    text = (out / "results.md").read_text()
    assert "Training length: fixed in epochs, 2 per cell (`--num_epochs 2`)" in text
    assert "so it trained fewer steps (`--num_steps` fixes the steps instead)" in text
    assert "Optimizer steps trained per cell: 50% 4; 100% 8." in text


def test_a_folder_made_before_num_steps_still_resumes(tmp_path):
    bundle, out = _bundle(tmp_path / "bundle"), tmp_path / "study"
    bundle_study(bundle, out, fractions="0.5", seeds="0", num_epochs=1)
    settings = json.loads((out / "study_settings.json").read_text())
    del settings["num_steps"]  # as written before --num_steps existed
    (out / "study_settings.json").write_text(json.dumps(settings))
    run = bundle_study(bundle, out, fractions="0.5", seeds="0", num_epochs=1)
    assert (run.ran, run.reused) == (0, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_steps": 9, "num_epochs": 2}, r"num_epochs \(2\) and num_steps \(9\) both set the training length"),
    ({"num_steps": 0}, r"num_steps: must be an integer >= 1, got 0"),
    ({"num_steps": 9.5}, r"num_steps: must be an integer >= 1, got 9.5"),
])
def test_bad_lengths_are_refused_before_anything_runs(tmp_path, kwargs, message):
    bundle = _bundle(tmp_path / "bundle")
    with pytest.raises(ValueError, match=message):
        bundle_study(bundle, tmp_path / "study", fractions="0.5", seeds="0", **kwargs)
    assert not (tmp_path / "study").exists()


def test_num_steps_is_refused_for_configs_that_cannot_take_it(tmp_path):
    """Without the key the override would be an unused new key, and the cells would train their default epochs."""
    bundle = _bundle(tmp_path / "bundle", {k: v for k, v in TRAIN.items() if k != "num_steps"})
    with pytest.raises(ValueError, match=r"num_steps: the configs of protocol\(s\) supervised \(train.json\) have no "
                                         r"'num_steps' setting.*use --num_epochs"):
        bundle_study(bundle, tmp_path / "study", fractions="0.5", seeds="0", num_steps=9)
    assert not (tmp_path / "study").exists()
    assert configs_without_key({"p": [bundle / "configs" / "train.json"], "q": [bundle / "configs" / "study.json"]},
                               "labeled") == ["q (study.json)"]


def test_the_counter_counts_iterations_over_every_run_of_a_plain_trainer():
    counter = TrainingStepCounter()
    assert counter.steps is None  # never attached: nothing counted, rather than 0
    engine = Engine(lambda engine, batch: None)
    counter.attach(engine)
    engine.run(range(4), max_epochs=2)
    engine.state.max_epochs = None  # one more run of the same trainer, as a pseudo-label round does
    engine.run(range(3), max_epochs=1)
    assert counter.steps == counter.iterations == 11
    assert repr(counter) == "TrainingStepCounter()"


def test_the_counter_reads_the_optimizer_steps_of_a_trainer_that_counts_them():
    """BYOL with accumulation over 2 iterations: 5 batches make 3 optimizer steps an epoch, not 5."""
    batches = [{"view1": torch.rand(2, 1, 8, 8), "view2": torch.rand(2, 1, 8, 8)} for _ in range(5)]
    net = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=4)
    counter = TrainingStepCounter()
    trainer = BYOLTrainer("cpu", 2, batches, net, torch.optim.SGD(net.parameters(), lr=0.01), accumulation_steps=2,
                          train_handlers=[counter])
    trainer.run()
    assert counter.iterations == 10 and counter.steps == trainer.state.optimizer_steps == 6


@pytest.mark.parametrize("args, words", [
    ((None, 30000, None, True), ["fixed in optimizer steps, at least 30,000 per cell (`--num_steps 30000`",
                                 "Pre-training: the bundle's default epochs."]),
    ((None, 30000, 50, True), ["Pre-training: 50 epochs (`--pretrain_epochs`)."]),
    ((20, None, 20, False), ["fixed in epochs, 20 per cell (`--num_epochs 20`)", "trained fewer steps"]),
    ((None, None, None, False), ["the bundle's default epochs per cell", "`--num_steps` fixes the steps instead"]),
])
def test_the_report_says_how_the_length_was_fixed(args, words):
    text = describe_training_length(*args)
    assert all(w in text for w in words), text
    assert ("Pre-training" in text) is args[3]
