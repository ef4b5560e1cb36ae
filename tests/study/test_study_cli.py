"""The command line: help, and bad settings stop before any run with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ssl.study.__main__ import main

OCT = str(Path(__file__).resolve().parents[2] / "bundles" / "oct_byol_pseudolabel")


def test_help_lists_the_settings(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--bundle", "--dataset_dir", "--fractions", "--shots", "--seeds", "--protocols", "--num_epochs",
                   "--pretrain_epochs", "--pretrain_per_seed", "--override", "--output_dir"):
        assert option in text


@pytest.mark.parametrize("args, message", [
    (["--fractions", "0.1,1.5"], r"fractions: label fraction '1.5' is outside (0, 1]"),
    (["--fractions", "0"], r"fractions: label fraction '0' is outside (0, 1]"),
    (["--seeds", ""], "seeds: the list is empty"),
    (["--protocols", "supervised,byol_magic"], "protocols: unknown protocol(s) ['byol_magic']"),
    (["--metrics", "dice"], "metrics: unknown metric(s) ['dice']"),
    (["--num_epochs", "0"], "num_epochs: must be an integer >= 1"),
    (["--override", "seed=3"], "'seed' is set by the study for every run (use --seeds)"),
    (["--override", "image_size"], "--override 'image_size': expected key=value"),
    (["--dataset_dir", "/no/such/data"], "dataset_dir: /no/such/data does not exist"),
    (["--fractions", "0.1", "--shots", "5"], "not allowed with argument"),
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
