"""Where a study keeps its pre-trainings, and how a folder made before methods were compared is carried over.

A study that compares no pre-training methods (its study.json has no ``pretrain.method_key``) keeps
one pre-training per seed in ``pretrain/seed_<s>/`` (shared pre-training: one in ``pretrain/``). A
study that compares methods keeps one per (method, seed) in ``pretrain/<method>/seed_<s>/`` (shared:
``pretrain/<method>/``), and its ``study_settings.json`` says so (:data:`PER_METHOD_KEY`).

A folder pre-trained before its study compared methods holds encoders of the method its
protocols used then, the study's ``default_method``: :func:`move_into_method_folder` moves its
``pretrain/`` to ``pretrain/<default_method>/`` so that they are reused, not trained again. The
move survives being killed halfway: the settings file records the per-method layout before the
last rename, and :func:`finish_moves` completes a move a killed run left.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from monai_ssl.utils import atomic_write_text

__all__ = ["PER_METHOD_KEY", "finish_moves", "move_into_method_folder", "pretrain_dir", "pretraining_mode",
           "pretraining_name"]

logger = logging.getLogger("monai_ssl.study")

PER_METHOD_KEY = "pretrain_per_method"  # in study_settings.json: pre-trainings live in pretrain/<method>/
MOVING_PREFIX = "pretrain_moving_to_"  # pretrain/ of a folder made before methods, on its way to pretrain/<m>/
_SEED_FOLDER = re.compile(r"seed_\d+")


def pretrain_dir(output_dir: Path, method: str | None, seed: int, shared: bool) -> Path:
    """The folder of the pre-training of ``method`` (``None``: a study comparing no methods) and ``seed``."""
    folder = output_dir / "pretrain"
    if method is not None:
        folder = folder / method
    return folder if shared else folder / f"seed_{seed}"


def pretraining_name(method: str | None, seed: int) -> str:
    """How logs and reports name a pre-training: ``seed 0``, or ``dino, seed 0`` when methods are compared."""
    return f"seed {seed}" if method is None else f"{method}, seed {seed}"


def pretraining_mode(output_dir: Path, per_method: bool) -> bool | None:
    """The mode of the pre-trainings a study folder holds, read from its layout.

    Args:
        output_dir: the study folder.
        per_method: whether its pre-trainings live in ``pretrain/<method>/`` folders.

    Returns:
        ``True``: shared pre-training (the pre-training folders hold a run, not ``seed_<s>/`` folders);
        ``False``: per seed (only ``seed_<s>/`` folders); ``None``: no pre-training has started there.
    """
    folder = output_dir / "pretrain"
    if not folder.is_dir():
        return None
    folders = [d for d in folder.iterdir() if d.is_dir()] if per_method else [folder]
    entries = [e for f in folders for e in f.iterdir()]
    if not entries:
        return None
    return not all(e.is_dir() and _SEED_FOLDER.fullmatch(e.name) for e in entries)


def finish_moves(output_dir: Path, settings_file: Path) -> list[str]:
    """Complete a :func:`move_into_method_folder` that a killed run left halfway; return the methods moved.

    The settings file is marked per-method (:data:`PER_METHOD_KEY`) before the last rename, so no
    later run mistakes ``pretrain/<method>/`` for a pre-training of the old layout.
    """
    moved = []
    for staging in sorted(output_dir.glob(MOVING_PREFIX + "*")):
        method = staging.name[len(MOVING_PREFIX):]
        if settings_file.is_file():
            saved = json.loads(settings_file.read_text(encoding="utf-8"))
            if saved.get(PER_METHOD_KEY) is not True:
                saved[PER_METHOD_KEY] = True
                atomic_write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", settings_file)
        target = output_dir / "pretrain" / method
        target.parent.mkdir(exist_ok=True)
        staging.rename(target)
        logger.info("study %s: the pre-training(s) made before methods were compared are now those of %r, in %s",
                    output_dir, method, target)
        moved.append(method)
    return moved


def move_into_method_folder(output_dir: Path, method: str, settings_file: Path) -> None:
    """Move the pre-training(s) of a folder made before methods were compared to ``pretrain/<method>/``.

    ``pretrain/seed_<s>/`` becomes ``pretrain/<method>/seed_<s>/`` (shared: ``pretrain/`` becomes
    ``pretrain/<method>/``); each encoder is recorded relative to its folder, so it is reused as is.
    """
    (output_dir / "pretrain").rename(output_dir / f"{MOVING_PREFIX}{method}")
    finish_moves(output_dir, settings_file)
