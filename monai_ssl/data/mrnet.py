"""MRNet-v1.0 (Stanford knee MRI) as a MONAI datalist.

The on-disk layout this module reads::

    <root>/{train,valid}/{sagittal,coronal,axial}/NNNN.npy   uint8 (slices, 256, 256)
    <root>/{train,valid}-{abnormal,acl,meniscus}.csv         headerless rows "ID,0|1"

IDs are zero-padded to four digits in file names and plain integers in the CSVs (``0,0``,
``1130,1``). :func:`mrnet_datalist` turns one split and plane (optionally with one task's
labels) into a list of dicts that ``monai.data.Dataset`` and ``CacheDataset`` take directly.

A *task* is one finding (``"acl"``: one binary label, as MRNet's baseline of Bien et al. 2018 trains
one model per finding) or several at once (``"all"`` or a list such as ``["acl", "meniscus"]``: a
multi-label task, one sigmoid output per finding, as in the multi-label classification of issue 23,
item 3). :func:`mrnet_findings`, :func:`mrnet_multi_label` and :func:`mrnet_class_names` read a task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "MRNET_PLANES",
    "MRNET_SPLITS",
    "MRNET_TASKS",
    "mrnet_class_names",
    "mrnet_datalist",
    "mrnet_findings",
    "mrnet_multi_label",
    "read_mrnet_labels",
    "validate_volume_file",
]

logger = logging.getLogger("monai_ssl")

MRNET_SPLITS: tuple[str, ...] = ("train", "valid")
MRNET_PLANES: tuple[str, ...] = ("sagittal", "coronal", "axial")
MRNET_TASKS: tuple[str, ...] = ("abnormal", "acl", "meniscus")

_LAYOUT = "<root>/{train,valid}/{sagittal,coronal,axial}/NNNN.npy"
_SHOW = 5  # how many IDs or file names an error or warning lists


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown MRNet {name} {value!r}; expected one of {', '.join(allowed)}")


def mrnet_findings(task: str | Sequence[str]) -> tuple[str, ...]:
    """The findings of a task, in label order.

    Args:
        task: one of :data:`MRNET_TASKS` (a single finding), ``"all"`` (the three, in the order of
            :data:`MRNET_TASKS`) or a list of distinct findings (kept in the given order).

    Returns:
        e.g. ``("acl",)`` for ``"acl"``; ``("abnormal", "acl", "meniscus")`` for ``"all"``.

    Raises:
        ValueError: an unknown finding (the three are listed), an empty list or a repeated finding.
    """
    expected = f"expected one of {', '.join(MRNET_TASKS)}, 'all' or a list of them"
    if isinstance(task, str):
        if task == "all":
            return MRNET_TASKS
        if task not in MRNET_TASKS:
            raise ValueError(f"unknown MRNet task {task!r} (setting 'task'); {expected}")
        return (task,)
    if not isinstance(task, Sequence) or len(task) == 0:
        raise ValueError(f"MRNet task (setting 'task') must be a finding name or a non-empty list, got {task!r}; "
                         f"{expected}")
    unknown = [t for t in task if not isinstance(t, str) or t not in MRNET_TASKS]
    if unknown:
        raise ValueError(f"unknown MRNet finding(s) {unknown} in task {list(task)!r} (setting 'task'); {expected}")
    if len(set(task)) != len(task):
        raise ValueError(f"MRNet task {list(task)!r} (setting 'task') names a finding more than once")
    return tuple(task)


def mrnet_multi_label(task: str | Sequence[str]) -> bool:
    """``False`` for a single finding such as ``"acl"``, ``True`` for ``"all"`` or a list (even of one finding)."""
    mrnet_findings(task)  # validates
    return not (isinstance(task, str) and task != "all")


def mrnet_class_names(task: str | Sequence[str]) -> list[str]:
    """Class names of a task: ``["negative", "acl"]`` for one finding, the findings for a multi-label task."""
    findings = mrnet_findings(task)
    return list(findings) if mrnet_multi_label(task) else ["negative", findings[0]]


def _first(items: list[str]) -> str:
    """Comma-join the first few ``items``, with an ellipsis when there are more."""
    shown = ", ".join(items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _id_key(stem: str) -> int | None:
    """The integer ID of a file stem such as ``"0042"``, or ``None`` when it is not a number."""
    return int(stem) if stem.isdigit() else None


def validate_volume_file(path: str | os.PathLike) -> str | None:
    """Check that ``path`` is a readable 3D numeric ``.npy`` array without reading its voxels.

    The file is opened with ``np.load(path, mmap_mode="r")``: only the header is parsed, and a
    truncated file fails the memory-map size check.

    Args:
        path: the ``.npy`` file.

    Returns:
        ``None`` when the file is fine, otherwise a short description of the problem.
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - every failure is reported the same way
        return f"not a readable .npy array ({type(err).__name__}: {err})"
    if not isinstance(array, np.ndarray):  # e.g. an .npz archive renamed to .npy
        kind = type(array).__name__
        if hasattr(array, "close"):
            array.close()
        return f"not a single .npy array (got {kind})"
    shape, dtype = tuple(array.shape), array.dtype
    del array  # releases the memory map (and its file handle) right away
    if len(shape) != 3:
        return f"expected 3 dimensions (slices, H, W), got shape {shape}"
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        return f"expected a numeric dtype, got {dtype}"
    if 0 in shape:
        return f"empty array of shape {shape}"
    return None


def read_mrnet_labels(csv_path: str | os.PathLike) -> dict[int, float]:
    """Read one headerless MRNet label CSV (rows ``ID,0|1``).

    Blank lines are ignored; anything else that is not ``integer,0|1`` is an error.

    Args:
        csv_path: e.g. ``<root>/train-acl.csv``.

    Returns:
        Integer exam ID -> label (``0.0`` or ``1.0``), in file order.

    Raises:
        FileNotFoundError: the CSV does not exist.
        ValueError: a malformed row (file, line number and row text are named) or a repeated ID.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"MRNet label CSV not found: {csv_path} (expected headerless rows 'ID,0|1')")
    labels: dict[int, float] = {}
    lines = csv_path.read_text(encoding="utf-8-sig").splitlines()
    for number, line in enumerate(lines, start=1):
        row = line.strip()
        if not row:
            continue
        fields = [f.strip() for f in row.split(",")]
        if len(fields) != 2 or not fields[0].isdigit() or fields[1] not in ("0", "1", "0.0", "1.0"):
            raise ValueError(f"{csv_path}, line {number}: malformed row {line!r}; expected 'ID,0' or 'ID,1'")
        exam = int(fields[0])
        if exam in labels:
            raise ValueError(f"{csv_path}, line {number}: ID {exam} appears more than once")
        labels[exam] = float(fields[1])
    return labels


def _volume_folder(root: Path, split: str, plane: str) -> Path:
    """Validate ``root`` and return ``<root>/<split>/<plane>``."""
    if not root.exists():
        raise FileNotFoundError(f"MRNet root folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"MRNet root is not a folder: {root}")
    folder = root / split / plane
    if not folder.is_dir():
        hint = ""
        if (root / "MRNet-v1.0").is_dir():
            hint = f"; did you mean root={root / 'MRNet-v1.0'}?"
        raise FileNotFoundError(f"MRNet volume folder not found: {folder}; expected the layout {_LAYOUT}{hint}")
    return folder


def _check_ids_match(labels: dict[int, float], volumes: dict[str, Path], csv_path: Path, folder: Path) -> None:
    """Raise ``ValueError`` when CSV IDs and volume files do not pair up one to one."""
    by_key = {_id_key(stem): stem for stem in volumes}
    no_volume = [f"{k:04d}" for k in labels if k not in by_key]
    no_label = [stem for stem in volumes if _id_key(stem) not in labels]
    problems = []
    if no_volume:
        problems.append(f"{len(no_volume)} ID(s) in {csv_path} have no volume in {folder}: {_first(no_volume)}")
    if no_label:
        problems.append(f"{len(no_label)} volume(s) in {folder} have no row in {csv_path}: {_first(no_label)}")
    if problems:
        raise ValueError("; ".join(problems))


def _sort_key(stem: str) -> tuple[int, int, str]:
    """Numeric IDs first in numeric order, then any other names alphabetically."""
    key = _id_key(stem)
    return (0, key, stem) if key is not None else (1, 0, stem)


def mrnet_datalist(
    root: str | os.PathLike,
    split: str = "train",
    plane: str = "sagittal",
    task: str | Sequence[str] | None = None,
    check_files: bool = True,
    skip_unreadable: bool = False,
) -> list[dict]:
    """List the exams of one MRNet split and plane, with one task's labels if asked.

    Args:
        root: the MRNet-v1.0 folder (holding ``train/``, ``valid/`` and the label CSVs).
        split: ``"train"`` or ``"valid"``.
        plane: ``"sagittal"``, ``"coronal"`` or ``"axial"``.
        task: ``"abnormal"``, ``"acl"`` or ``"meniscus"`` to add labels from
            ``<root>/<split>-<task>.csv``; ``"all"`` or a list of findings for multi-hot labels
            read from one CSV per finding (see :func:`mrnet_findings`); ``None`` for unlabeled
            items (self-supervision).
        check_files: open every volume's header (memory-mapped, voxels are not read) and require a
            readable 3D numeric array.
        skip_unreadable: with ``check_files``, drop unreadable volumes and log one warning with
            their count and first names instead of raising.

    Returns:
        Items ``{"image": absolute path, "id": "0042"}``, plus ``"label"`` when ``task`` is
        given: a float32 numpy array of shape ``(1,)`` holding 0 or 1, so that a batch collates to
        a float32 ``(B, 1)`` tensor, the target of a 1-logit ``BCEWithLogitsLoss`` (a plain list
        ``[0.0]`` would collate to a list of float64 ``(B,)`` tensors). Sorted by ID; hidden
        files (names starting with ``.``) are ignored.

    Raises:
        ValueError: unknown split, plane or task (finding); empty volume folder; malformed CSV row; IDs
            without a volume or volumes without a CSV row; an unreadable volume (unless skipped).
        FileNotFoundError: root, volume folder or label CSV missing.
        NotADirectoryError: root is a file.
    """
    _check_choice("split", split, MRNET_SPLITS)
    _check_choice("plane", plane, MRNET_PLANES)
    findings = () if task is None else mrnet_findings(task)
    root = Path(os.path.abspath(root))
    folder = _volume_folder(root, split, plane)
    volumes = {
        p.stem: p for p in folder.iterdir() if p.suffix == ".npy" and not p.name.startswith(".") and p.is_file()
    }
    if not volumes:
        raise ValueError(f"MRNet volume folder is empty: {folder} has no .npy files; expected {_LAYOUT}")

    labels: list[dict[int, float]] = []
    for finding in findings:
        csv_path = root / f"{split}-{finding}.csv"
        labels.append(read_mrnet_labels(csv_path))
        _check_ids_match(labels[-1], volumes, csv_path, folder)

    stems = sorted(volumes, key=_sort_key)
    if check_files:
        problems = {stem: validate_volume_file(volumes[stem]) for stem in stems}
        bad = [stem for stem in stems if problems[stem] is not None]
        if bad and not skip_unreadable:
            first = bad[0]
            more = f" ({len(bad) - 1} more unreadable: {_first(bad[1:])})" if len(bad) > 1 else ""
            raise ValueError(f"unreadable MRNet volume {volumes[first]}: {problems[first]}{more}")
        if bad and len(bad) == len(stems):
            raise ValueError(f"all {len(bad)} MRNet volumes in {folder} are unreadable, e.g. {volumes[bad[0]]}: "
                             f"{problems[bad[0]]}")
        if bad:
            names = [f"{volumes[s].name} ({problems[s]})" for s in bad]
            logger.warning(
                "skipped %d of %d unreadable volumes in %s: %s", len(bad), len(stems), folder, _first(names)
            )
            stems = [s for s in stems if problems[s] is None]

    items = []
    for stem in stems:
        item: dict = {"image": str(volumes[stem]), "id": stem}
        if findings:
            item["label"] = np.array([column[_id_key(stem)] for column in labels], dtype=np.float32)  # type: ignore[index]
        items.append(item)
    return items
