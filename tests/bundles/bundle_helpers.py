"""Paths and small-model overrides for the end-to-end bundle tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BYOLMED2D = REPO / "bundles" / "byolmed2d" / "configs"

# the recipe's structure with small sizes, so each bundle runs in seconds on 2 CPU cores
TINY = {
    "image_size": 32,
    "num_slices": 4,
    "hidden_dim": 64,
    "projection_dim": 16,
    "batch_size": 2,
    "num_workers": 0,
    "num_epochs": 1,
}

OCT = REPO / "bundles" / "oct_byol_pseudolabel" / "configs"

# small sizes for the 2D OCT bundle; the BYOL head sizes go to every config (the task head's projector matches them)
TINY_2D = {
    "image_size": 32,
    "batch_size": 8,
    "num_workers": 0,
    "num_epochs": 1,
    "hidden_dim": 64,
    "projection_dim": 16,
}

ISIC = REPO / "bundles" / "isic_cross_teaching" / "configs"

# the ISIC cross-teaching bundle at its smallest: 64-pixel patches (SwinUNETR needs a multiple of 32, and its
# deepest feature map more than 1x1 pixel in training, so 32 fails) cut from images resized to 96x96 (the sliding
# window then takes 4 patches per image), a SwinUNETR of feature size 12, 2 labeled + 2 unlabeled images per step
TINY_ISIC = {
    "patch_size": 64,
    "working_size": 96,
    "swin_feature_size": 12,
    "labeled_batch_size": 2,
    "unlabeled_batch_size": 2,
    "num_workers": 0,
    "num_epochs": 1,
}
# the settings of TINY_ISIC that evaluate.json and inference.json have (they train nothing)
TINY_ISIC_EVAL = {key: TINY_ISIC[key] for key in ("patch_size", "working_size", "swin_feature_size", "num_workers")}

SKIN = REPO / "bundles" / "skin_lesion_classification" / "configs"

# the dermoscopy bundle at its smallest: a ResNet-18 with the small-image stem at 32 pixels (the paper's
# 480 -> 224 resize becomes 32 -> 32), small BYOL heads, no caching; on a user folder the bundle defaults to the
# paper's 100 / 50 epochs, so every training run passes num_epochs 1
TINY_SKIN = {
    "image_size": 32,
    "working_size": 32,
    "encoder": "resnet18",
    "small_images": True,
    "hidden_dim": 64,
    "projection_dim": 16,
    "batch_size": 4,
    "num_workers": 0,
    "cache_rate": 0,
    "num_epochs": 1,
}
# what evaluate.json, inference.json and saliency.json take (the rest comes from the model's settings)
TINY_SKIN_EVAL = {"batch_size": 4, "num_workers": 0}

# environment variable of the `gpu` tests: unset (or "cuda") runs them on the GPU, "cpu" is a dry run on
# the CPU that checks the tests' own logic on a machine without CUDA (the cuda assertions are skipped)
TEST_DEVICE_ENV = "MONAI_SSL_TEST_DEVICE"


def error_messages(error: BaseException | None) -> list[str]:
    """The messages of ``error`` and of the errors it was raised from (MONAI wraps config errors)."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return messages


# a gloo worker thread still alive when a CPU process of `torchrun` exits aborts it (std::terminate) now and
# then on a busy 2-core machine, after its work is done; seen about once in a dozen runs, never twice in a row
GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def two_process_command(config_files: list[str | Path], log_dir: Path, *options: str) -> list[str]:
    """``torchrun --nproc_per_node=2 -m monai.bundle run --config_file [...] <options>``, each rank's output
    also written to ``log_dir`` (read it with :func:`rank_outputs`)."""
    import sys

    files = ",".join(f"'{f}'" for f in config_files)
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--log-dir", str(log_dir),
            "--tee", "3", "-m", "monai.bundle", "run", "--config_file", f"[{files}]", *options]


def rank_outputs(log_dir: Path) -> dict[int, str]:
    """Each local rank's stdout and stderr of the last :func:`two_process_command` run into ``log_dir``."""
    outputs: dict[int, str] = {}
    attempts = sorted(log_dir.glob("*/attempt_*"), key=lambda p: p.stat().st_mtime)
    for rank_dir in sorted(p for p in attempts[-1].iterdir() if p.is_dir() and p.name.isdigit()):
        outputs[int(rank_dir.name)] = "".join(f.read_text(errors="replace") for f in sorted(rank_dir.glob("*.log")))
    return outputs


def run_two_cpu_processes(command: list[str], env: dict, bundle_root: Path, timeout: int = 300):
    """Run a ``torchrun --nproc_per_node=2`` bundle command on the CPU; once again, from empty run folders, when
    the only failure is the gloo teardown abort (:data:`GLOO_TEARDOWN_ABORT`). Returns the last result."""
    import shutil
    import subprocess
    import warnings

    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    before_abort = result.stderr.split(GLOO_TEARDOWN_ABORT)[0]
    if result.returncode != 0 and GLOO_TEARDOWN_ABORT in result.stderr and "Traceback" not in before_abort:
        warnings.warn(f"torchrun: a process aborted at gloo teardown ({GLOO_TEARDOWN_ABORT!r}); running once more")
        for folder in ("models", "runs"):
            shutil.rmtree(bundle_root / folder, ignore_errors=True)
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return result
