"""The command line: help, and bad settings stop before any run with a message naming the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import monai_ssl.study.__main__ as cli
from monai_ssl.study.__main__ import main

OCT = str(Path(__file__).resolve().parents[2] / "bundles" / "oct_byol_pseudolabel")


def test_help_lists_the_settings(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--bundle", "--dataset_dir", "--fractions", "--shots", "--seeds", "--protocols", "--num_epochs",
                   "--num_steps", "--pretrain_epochs", "--shared_pretraining", "--override", "--output_dir"):
        assert option in text
    assert "--num_steps 30000" in text and "every label budget trains equally long" in " ".join(text.split())
    assert "--pretrain_per_seed" in text and "deprecated" in text
    assert "intervals then cover fine-tuning only" in " ".join(text.split())
    words = " ".join(text.split())
    assert "default_protocols" in words and "<m>_finetune, <m>_linear_probe, <m>_pseudolabel" in words
    assert "--protocols supervised,byol_finetune,dino_finetune,cass_finetune" in words


def _capture(monkeypatch) -> dict:
    """Replace the study by a recorder of its arguments."""
    seen: dict = {}

    def fake_bundle_study(**kwargs):
        seen.update(kwargs)
        return type("Run", (), {"failed": 0})()

    monkeypatch.setattr(cli, "bundle_study", fake_bundle_study)
    return seen


@pytest.mark.parametrize("flags, shared", [([], False), (["--shared_pretraining"], True)])
def test_per_seed_pretraining_is_the_default(monkeypatch, capsys, flags, shared):
    seen = _capture(monkeypatch)
    assert main(["--bundle", OCT, "--output_dir", "out", *flags]) == 0
    assert seen["shared_pretraining"] is shared and "pretrain_per_seed" not in seen
    assert "deprecated" not in capsys.readouterr().err


@pytest.mark.parametrize("flags, length", [([], (None, None)), (["--num_epochs", "20"], (20, None)),
                                           (["--num_steps", "30000"], (None, 30000))])
def test_the_training_length_in_epochs_or_steps_reaches_the_study(monkeypatch, flags, length):
    seen = _capture(monkeypatch)
    assert main(["--bundle", OCT, "--output_dir", "out", "--pretrain_epochs", "5", *flags]) == 0
    assert (seen["num_epochs"], seen["num_steps"], seen["pretrain_epochs"]) == (*length, 5)


def test_pretrain_per_seed_is_a_deprecated_no_op(monkeypatch, capsys):
    seen = _capture(monkeypatch)
    assert main(["--bundle", OCT, "--output_dir", "out", "--pretrain_per_seed"]) == 0
    assert seen["shared_pretraining"] is False
    lines = [line for line in capsys.readouterr().err.splitlines() if "--pretrain_per_seed" in line]
    assert lines == [cli.DEPRECATED_PER_SEED] and "now" in lines[0] and "default" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--fractions", "0.1,1.5"], "fractions: label fraction '1.5' is outside [0, 1]"),
    (["--fractions", "0"], "fractions: fraction 0 (no labels) is the column of a label-free protocol (study.json "
                           '"label_free": true), and none of the chosen protocols'),
    (["--seeds", ""], "seeds: the list is empty"),
    (["--protocols", "supervised,byol_magic"], "protocols: unknown protocol(s) ['byol_magic']"),
    (["--metrics", "dice"], "metrics: unknown metric(s) ['dice']"),
    (["--num_epochs", "0"], "num_epochs: must be an integer >= 1"),
    (["--num_steps", "0"], "num_steps: must be an integer >= 1"),
    (["--num_steps", "3e4"], "argument --num_steps: invalid int value: '3e4'"),
    (["--num_epochs", "2", "--num_steps", "30000"], "argument --num_steps: not allowed with argument --num_epochs"),
    (["--override", "seed=3"], "'seed' is set by the study for every run (use --seeds)"),
    (["--override", "image_size"], "--override 'image_size': expected key=value"),
    (["--dataset_dir", "/no/such/data"], "dataset_dir: /no/such/data does not exist"),
    (["--fractions", "0.1", "--shots", "5"], "not allowed with argument"),
    (["--shared_pretraining", "--pretrain_per_seed"], "not allowed with argument"),
])
def test_bad_settings_exit_with_a_clear_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--bundle", OCT, "--output_dir", str(tmp_path / "study"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "study").exists()  # nothing ran


def test_a_bundle_without_study_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--bundle", str(tmp_path), "--output_dir", str(tmp_path / "study")])
    assert "has no study description" in capsys.readouterr().err


def test_a_folder_of_the_old_shared_default_needs_the_flag(tmp_path, capsys):
    """A study folder made before per-seed pre-training was the default, resumed with today's command."""
    out = tmp_path / "study"
    (out / "pretrain" / "models").mkdir(parents=True)
    (out / "pretrain" / "models" / "encoder.pt").write_text("x")
    (out / "study_settings.json").write_text(json.dumps({
        "bundle": str(Path(OCT).resolve()), "dataset_dir": None, "num_epochs": None, "pretrain_epochs": None,
        "pretrain_per_seed": False, "overrides": {}}))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    settings = (out / "study_settings.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["--bundle", OCT, "--output_dir", str(out), "--fractions", "0.5", "--seeds", "0"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "shared pre-training" in error and "per-seed pre-training" in error
    assert "add --shared_pretraining" in error
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing ran, nothing rewritten
    assert (out / "study_settings.json").read_text() == settings
