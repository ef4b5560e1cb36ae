"""Resume and failure modes of the bundle commands, run as a user runs them: real processes, ``kill -9``."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bundle_helpers import BYOLMED2D, TINY

from monai_ssl.data import make_mrnet_demo

TRAIN = BYOLMED2D / "train.json"
FINETUNE = BYOLMED2D / "finetune.json"


def _command(config: Path, root: Path, data: Path, **overrides) -> list[str]:
    settings = {**TINY, **overrides}
    args = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config), "--bundle_root", str(root),
            "--dataset_dir", str(data)]
    for key, value in settings.items():
        if value is not None:
            args += [f"--{key}", str(value)]
    return args


def _run(config: Path, root: Path, data: Path, **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(_command(config, root, data, **overrides), capture_output=True, text=True, timeout=600)


def _last_line(result: subprocess.CompletedProcess) -> str:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()][-1]


def _sha(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _kill_after_checkpoint(args: list[str], checkpoint: Path, after: Path | None = None) -> None:
    """Start ``args``, wait until ``checkpoint`` exists (and was written after ``after`` appeared), ``kill -9`` it."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not checkpoint.exists() or (after is not None and not after.exists()):
            assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before writing {checkpoint.name}"
            assert time.monotonic() < deadline, f"no {checkpoint.name} after 300 s"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no handler, no final save
        proc.wait()


@pytest.fixture(scope="module")
def mrnet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume_data") / "MRNet-v1.0"
    return make_mrnet_demo(root, n_train=6, n_valid=4, num_slices=(5, 6), size=48, seed=1, planes=("sagittal",))


def _cosine_lr(step: int, total: int, base: float = 3e-4) -> float:
    """byolmed2d's learning rate at optimizer step ``step`` of ``total``: a half cosine from ``base`` to 0."""
    return base * (1 + math.cos(math.pi * step / total)) / 2


def test_pretraining_resume_continues_only_its_own_run(tmp_path, mrnet):
    """Issue 7, cases 1, 4 and 5: leftover checkpoints, run length on resume, encoder of a killed run."""
    root = tmp_path / "bundle"
    done = _run(TRAIN, root, mrnet, num_epochs=2)  # the quick start: checkpoint_epoch=1,2.pt
    assert done.returncode == 0, done.stderr[-2000:]
    encoder = root / "models" / "encoder.pt"
    first_encoder = _sha(encoder)

    refused = _run(TRAIN, root, mrnet, num_epochs=4)  # a new run into the same folder
    assert refused.returncode != 0
    assert re.search(r"ERROR.*holds the checkpoints of an earlier run .*--resume True.*--existing_checkpoints archive",
                     _last_line(refused))

    pretrain = root / "models" / "pretrain"
    _kill_after_checkpoint(_command(TRAIN, root, mrnet, num_epochs=4, existing_checkpoints="archive"),
                           pretrain / "checkpoint_epoch=1.pt", after=pretrain / "archive" / "1" / "checkpoint_epoch=2.pt")
    assert sorted(p.name for p in (pretrain / "archive" / "1").iterdir()) == ["checkpoint_epoch=1.pt",
                                                                              "checkpoint_epoch=2.pt"]
    assert _sha(encoder) == first_encoder  # the killed run wrote no partial encoder
    killed_at = max(int(re.search(r"=(\d+)", p.name).group(1)) for p in pretrain.glob("checkpoint_epoch=*.pt"))

    resumed = _run(TRAIN, root, mrnet, num_epochs=None, resume=True)  # bare --resume True, as the guide shows
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f"checkpoint_epoch={killed_at}.pt at epoch {killed_at} of 4" in log  # the killed 4-epoch run, not the 2-epoch one
    assert "run length changed" not in log and "pre-trained encoder written" in log
    final = torch.load(pretrain / "checkpoint_epoch=4.pt", weights_only=True)
    # the learning rate is a cosine over the run's 12 optimizer steps, set before each step from the step count
    assert final["trainer"]["iteration"] == 4 * 3 and final["run"]["num_epochs"] == 4
    assert final["optimizer"]["param_groups"][0]["lr"] == pytest.approx(_cosine_lr(11, 12))
    third = torch.load(pretrain / "checkpoint_epoch=3.pt", weights_only=True)
    assert third["optimizer"]["param_groups"][0]["lr"] == pytest.approx(_cosine_lr(8, 12))  # not 0 before the end
    assert sorted(p.name for p in pretrain.glob("*.pt")) == ["checkpoint_epoch=3.pt", "checkpoint_epoch=4.pt"]
    assert not list(pretrain.glob(".*.tmp")) and _sha(encoder) != first_encoder

    longer = _run(TRAIN, root, mrnet, num_epochs=5, resume=True)  # an explicit new length: the schedules follow
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "run length changed from 4 to 5 epochs" in longer.stdout + longer.stderr
    fifth = torch.load(pretrain / "checkpoint_epoch=5.pt", weights_only=True)
    assert fifth["optimizer"]["param_groups"][0]["lr"] == pytest.approx(_cosine_lr(14, 15))  # over 15 steps now

    other = make_mrnet_demo(tmp_path / "other" / "MRNet-v1.0", n_train=7, n_valid=4, num_slices=(5, 6), size=48,
                            seed=2, planes=("sagittal",))
    wrong_data = _run(TRAIN, root, other, num_epochs=6, resume=True)
    assert wrong_data.returncode != 0
    assert re.search(r"ERROR.*cannot resume from checkpoint .*checkpoint_epoch=5\.pt: it was trained on other data",
                     _last_line(wrong_data))


def test_finetune_resume_keeps_the_best_model(tmp_path, mrnet):
    """Issue 7, case 2: the best validation score is part of the checkpoint, so a resume cannot replace model.pt
    with a worse epoch."""
    root = tmp_path / "bundle"
    assert _run(TRAIN, root, mrnet, num_epochs=1).returncode == 0
    finetune = root / "models" / "finetune"
    _kill_after_checkpoint(_command(FINETUNE, root, mrnet, num_epochs=3, lr_milestones="[2]"),
                           finetune / "checkpoint_epoch=1.pt")
    checkpoint = max(finetune.glob("checkpoint_epoch=*.pt"))  # epoch 1 (or 2 if the kill came late)
    killed_at = int(re.search(r"=(\d+)", checkpoint.name).group(1))
    saved = torch.load(checkpoint, weights_only=True)
    (score, name), = saved["best_model"]["key_metric"]["_saved"]  # the best epoch so far and its file
    # Make the saved best score unbeatable (a perfect AUC): any later epoch is then worse, whatever the data.
    saved["best_model"]["key_metric"]["_saved"][0] = (1.0, name)
    saved["best_model"]["best_metric"] = 1.0
    torch.save(saved, checkpoint)
    best = _sha(root / "models" / "model.pt")

    resumed = _run(FINETUNE, root, mrnet, num_epochs=3, lr_milestones="[2]", resume=True)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f"at epoch {killed_at} of 3" in log and "Got new best metric" not in log
    assert _sha(root / "models" / "model.pt") == best


def test_pretraining_with_fewer_exams_than_a_batch_is_an_error(tmp_path, mrnet):
    """Issue 7, case 3: a run that would train zero steps fails and says why (6 exams, batch 8, drop_last)."""
    result = _run(TRAIN, tmp_path / "bundle", mrnet, batch_size=8)
    assert result.returncode != 0
    last = _last_line(result)
    assert "would train zero steps: 6 training items" in last and "batch_size 8, drop_last=True" in last
    assert "lower --batch_size to at most 6" in last
    assert not (tmp_path / "bundle" / "models" / "encoder.pt").exists()


def test_bad_input_ends_in_one_readable_line(tmp_path):
    """Issue 7, case 6: the message naming the file is the last line; no traceback without MONAI_SSL_DEBUG=1."""
    missing = tmp_path / "no_such_folder"
    result = _run(TRAIN, tmp_path / "bundle", missing)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert _last_line(result).startswith("ERROR in config key 'train#datalist'")
    assert str(missing) in _last_line(result) and "Traceback" not in output
    assert len(output.splitlines()) < 20

    text_flag = _run(TRAIN, tmp_path / "bundle", missing, resume="true")
    assert text_flag.returncode != 0
    assert "setting 'resume' must be True or False, got the text 'true'" in _last_line(text_flag)
