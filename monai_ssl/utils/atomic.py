"""Atomic file writes: a reader never sees a half-written checkpoint, table or picture."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_directory", "atomic_path", "atomic_torch_save", "atomic_write_text", "is_empty_dir"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary file lives in the same folder, so ``os.replace`` is atomic on POSIX and Windows.
    On error the temporary file is removed and ``path`` is left as it was.

    Example::

        with atomic_path("report.png") as tmp:
            figure.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def is_empty_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder with nothing in it."""
    path = Path(path)
    return path.is_dir() and not any(path.iterdir())


def atomic_directory(root: str | os.PathLike, write: Callable[[Path], None], creator: str = "this function") -> Path:
    """Create the folder ``root`` by ``write(tmp)`` into a hidden sibling folder, then one rename.

    An interrupted run never leaves something at ``root`` that looks finished (a leftover
    ``.<name>.partial-*`` folder is safe to delete).

    Raises:
        FileExistsError: ``root`` exists and is not an empty folder, or appeared meanwhile.
    """
    root = Path(root)
    if root.exists() and not is_empty_dir(root):
        raise FileExistsError(f"{root} already exists and is not an empty folder; {creator} only creates new folders")
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        write(partial)
        if is_empty_dir(root):
            root.rmdir()
        try:
            os.rename(partial, root)
        except OSError as err:  # someone created root meanwhile
            raise FileExistsError(f"{root} appeared while {creator} was writing it: {err}") from err
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return root

