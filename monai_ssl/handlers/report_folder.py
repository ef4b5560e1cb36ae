"""The folder of an evaluation report: never written over by accident, and replaced whole or not at all.

A report is the set of files :class:`~monai_ssl.handlers.ClassificationReportWriter` writes
(``{prefix}predictions.csv``, ``{prefix}metrics.json``, ``{prefix}confusion_matrix.png``,
``{prefix}roc_curve.png``). :func:`publish_report` writes a new one into a hidden sibling folder and
then swaps it in with renames, so a reader finds the old report, the new one or, for the instant of
the swap, no folder; never a mix of both or a half-written one. Everything else in the folder (such
as ``inference/``, where the bundles' ``inference.json`` writes) is carried over into the new folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["REPORT_FILES", "check_report_folder", "earlier_report", "publish_report"]

logger = logging.getLogger("monai_ssl")

REPORT_FILES = ("predictions.csv", "metrics.json", "confusion_matrix.png", "roc_curve.png")
"""The file names of a report, each preceded by the writer's ``prefix``."""


def _report_names(prefix: str) -> set[str]:
    return {f"{prefix}{name}" for name in REPORT_FILES}


def earlier_report(folder: str | os.PathLike, prefix: str = "") -> list[str]:
    """The report files that ``folder`` already holds, sorted (empty when none, or no such folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.name in _report_names(prefix))


def check_report_folder(folder: str | os.PathLike, prefix: str = "", overwrite: bool = False) -> None:
    """Check that a report may be published into ``folder``.

    Args:
        folder: the report folder (the writer's ``output_dir``).
        prefix: the writer's file-name prefix.
        overwrite: whether an earlier report in ``folder`` may be replaced.

    Raises:
        FileExistsError: ``folder`` holds a report and ``overwrite`` is false. The message names the
            folder and the two ways out: ``--output_dir <new folder>`` or ``--overwrite True``.
        NotADirectoryError: ``folder`` is a file.
        ValueError: ``folder`` is the current folder or one that holds it (a report folder is replaced
            whole, so it must be a folder of its own).
    """
    path = Path(folder).resolve()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"ClassificationReportWriter: output_dir {folder} is a file, not a folder.")
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise ValueError(
            f"ClassificationReportWriter: output_dir {folder} is the current folder or holds it; a report folder "
            "is replaced whole, so give the report a folder of its own, e.g. --output_dir ./eval."
        )
    found = earlier_report(path, prefix)
    if found and not overwrite:
        raise FileExistsError(
            f"ClassificationReportWriter: {folder} already holds an evaluation ({', '.join(found)}); it is left "
            "as it is. To keep it, write this evaluation into a new folder with --output_dir <new folder>; "
            "to replace it, add --overwrite True."
        )


def publish_report(folder: str | os.PathLike, write: Callable[[Path], None], prefix: str = "") -> Path:
    """Write a report with ``write(staging_folder)`` and put it in place of ``folder``'s report in one swap.

    ``write`` fills a hidden sibling folder ``.<name>.partial-*``; if it fails, ``folder`` is left as it
    was. Then the entries of ``folder`` that are not report files are moved into the new folder, ``folder``
    is renamed to ``.<name>.old-*``, the new folder takes its name and the old one (holding only the
    earlier report) is deleted. Check ``folder`` with :func:`check_report_folder` first.

    Args:
        folder: the report folder (created when missing, with its parents).
        write: writes the report files into the folder it is given.
        prefix: the writer's file-name prefix (which files are the report).

    Returns:
        ``folder`` as a ``Path``.
    """
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staged = folder.parent / f".{folder.name}.partial-{tag}"
    old = folder.parent / f".{folder.name}.old-{tag}"
    staged.mkdir()
    carried: list[str] = []
    try:
        write(staged)
        if folder.exists():
            os.rename(folder, old)
            report = _report_names(prefix) | {p.name for p in staged.iterdir()}
            for entry in sorted(old.iterdir()):
                if entry.name not in report:
                    os.rename(entry, staged / entry.name)
                    carried.append(entry.name)
        os.rename(staged, folder)
    except BaseException:
        if old.exists() and not folder.exists():  # undo the swap: the earlier folder goes back, whole
            for name in list(carried):
                os.rename(staged / name, old / name)
                carried.remove(name)
            os.rename(old, folder)
        raise
    finally:
        if carried and staged.exists():  # an undo that failed: keep what was carried, say where it is
            logger.error("the report folder %s could not be restored; its earlier contents are in %s and %s",
                         folder, old, staged)
        elif staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return folder
