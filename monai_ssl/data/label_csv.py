"""A classification dataset given as a CSV of labels and a folder of images, as a MONAI datalist.

Two CSV shapes are read (the first row is the header; the id column is the first one unless
``id_column`` names another):

* ``id,label``: one label column holding a class name (``nevus``) or a class index (``2``);
* ``id,label_1,...,label_k``: one 0/1 column per class (one-hot or multi-hot). A row may set
  several classes in a multi-label task (the immunofluorescence set of the S4MI paper, Singh et
  al.); in a single-label task exactly one must be set.

Every id names an image in ``image_dir``: the file ``<id>`` itself or ``<id><extension>`` for one
of ``extensions``. The bad input of issue 23 is refused with the CSV file, the row (its line
number in the file) and the id or column named: listed images that are missing (with their
count; ``skip_missing=True`` skips them with one logged count), label columns that do not match
the declared ``class_names``, empty or NaN cells, several classes set in a single-label row.
Images in ``image_dir`` that the CSV does not list are reported in one warning with their count.

The ISIC 2017 Part 3 reader (:mod:`monai_ssl.data.isic_classification`) uses the same helpers.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .image_folder import IMAGE_SUFFIXES
from .mrnet import _first

__all__ = ["CsvRow", "label_csv_datalist", "read_label_csv"]

logger = logging.getLogger("monai_ssl")

_EMPTY = {"", "nan", "na", "n/a", "none", "null"}


@dataclass(frozen=True)
class CsvRow:
    """One data row of a label CSV: its line number in the file, its id and its cells by column name."""

    line: int
    id: str
    cells: dict[str, str]


def read_label_csv(csv_path: str | os.PathLike, id_column: str | None = None) -> tuple[list[str], list[CsvRow]]:
    """Read a label CSV: the label column names and the rows, with ids checked.

    Args:
        csv_path: the CSV file (UTF-8, a header row first; a byte-order mark is accepted).
        id_column: the column holding the image ids; default: the first column.

    Returns:
        ``(label_columns, rows)``: the header's columns other than the id column, in file order,
        and one :class:`CsvRow` per non-blank data row.

    Raises:
        FileNotFoundError: ``csv_path`` is not a file.
        ValueError: no header, repeated or empty column names, ``id_column`` not in the header, no
            label column, no data row, a row with another number of cells than the header, an
            empty id, or an id repeated (both line numbers named).
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"label CSV not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = [(number, row) for number, row in enumerate(csv.reader(handle), start=1) if any(c.strip() for c in row)]
    if not lines:
        raise ValueError(f"label CSV {path} is empty; expected a header such as 'id,label' or 'id,class_1,...,class_k'")
    header = [c.strip() for c in lines[0][1]]
    if any(not c for c in header) or len(set(header)) != len(header):
        raise ValueError(f"label CSV {path}: the header {header} has empty or repeated column names")
    key = header[0] if id_column is None else id_column
    if key not in header:
        raise ValueError(f"label CSV {path}: id_column {id_column!r} is not in the header {header}")
    label_columns = [c for c in header if c != key]
    if not label_columns:
        raise ValueError(f"label CSV {path}: no label column besides the id column {key!r} (header {header})")
    rows: list[CsvRow] = []
    seen: dict[str, int] = {}
    for number, cells in lines[1:]:
        if len(cells) != len(header):
            raise ValueError(
                f"label CSV {path}, row {number}: {len(cells)} cell(s) but the header has {len(header)} ({header})"
            )
        values = {name: cell.strip() for name, cell in zip(header, cells)}
        image_id = values.pop(key)
        if image_id.lower() in _EMPTY:
            raise ValueError(f"label CSV {path}, row {number}: the id column {key!r} is empty")
        if image_id in seen:
            raise ValueError(f"label CSV {path}: id {image_id!r} is listed twice, in rows {seen[image_id]} and {number}")
        seen[image_id] = number
        rows.append(CsvRow(number, image_id, values))
    if not rows:
        raise ValueError(f"label CSV {path} has a header but no data row")
    return label_columns, rows


def cell_value(path: Path, row: CsvRow, column: str) -> str:
    """The cell of ``column`` in ``row``; an empty or NaN cell is an error naming the file, row, id and column."""
    value = row.cells[column]
    if value.lower() in _EMPTY:
        raise ValueError(
            f"label CSV {path}, row {row.line} (id {row.id!r}): the cell of column {column!r} is empty or NaN "
            f"({value!r}); every label cell must hold a value"
        )
    return value


def binary_cell(path: Path, row: CsvRow, column: str) -> int:
    """A 0/1 indicator cell (``0``, ``1``, ``0.0``, ``1.0``) as an int; anything else names the file, row and column."""
    value = cell_value(path, row, column)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if number not in (0.0, 1.0):
        raise ValueError(
            f"label CSV {path}, row {row.line} (id {row.id!r}): column {column!r} holds {value!r}; "
            "expected 0 or 1 in a one-column-per-class CSV"
        )
    return int(number)


def normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """File name endings, lower case with a leading dot; a bad value is an error."""
    endings = [extensions] if isinstance(extensions, str) else list(extensions)
    if not endings or not all(isinstance(e, str) and e.strip(".") for e in endings):
        raise ValueError(f"extensions must be file name endings such as '.jpg', got {extensions!r}")
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in endings)


def index_images(
    image_dir: str | os.PathLike, extensions: Sequence[str], exclude: re.Pattern[str] | None = None
) -> tuple[Path, dict[str, list[Path]]]:
    """The image files of ``image_dir`` (not recursive) by id: both the file name and the stem are keys.

    Args:
        image_dir: the folder of images.
        extensions: file name endings to take (case-insensitive).
        exclude: file names matching this pattern (``fullmatch``) are not images, e.g. ISIC superpixels.

    Returns:
        ``(folder, index)``: the absolute folder and a dict id -> matching files (several when two
        files share a stem).

    Raises:
        FileNotFoundError: ``image_dir`` is not a folder.
    """
    suffixes = normalise_extensions(extensions)
    folder = Path(os.path.abspath(image_dir))
    if not folder.is_dir():
        kind = "is not a folder" if folder.exists() else "not found"
        raise FileNotFoundError(f"image folder {kind}: {folder}")
    index: dict[str, list[Path]] = {}
    for file in sorted(folder.iterdir()):
        name = file.name
        if name.startswith(".") or not name.lower().endswith(suffixes) or (exclude and exclude.fullmatch(name)):
            continue
        if not file.is_file():
            continue
        index.setdefault(name, []).append(file)
        index.setdefault(file.stem, []).append(file)
    return folder, index


def match_images(
    csv_path: Path, rows: Sequence[CsvRow], folder: Path, index: dict[str, list[Path]], skip_missing: bool
) -> dict[str, Path]:
    """The image of every listed id; missing images are an error (or skipped), unlisted ones a warning.

    Args:
        csv_path: the CSV, named in messages.
        rows: its rows.
        folder: the image folder, named in messages.
        index: the output of :func:`index_images`.
        skip_missing: skip the rows whose image is missing, with one warning giving their count.

    Returns:
        id -> image path for the rows whose image was found.

    Raises:
        ValueError: an id matching two files (e.g. ``a.jpg`` and ``a.png``); listed images missing
            without ``skip_missing`` (their count and the first ids named); no image found at all.
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for row in rows:
        files = index.get(row.id, [])
        if len(files) > 1:
            raise ValueError(
                f"label CSV {csv_path}, row {row.line}: id {row.id!r} matches {len(files)} files in {folder}: "
                f"{_first([f.name for f in files])}; keep one image per id or narrow extensions"
            )
        if files:
            found[row.id] = files[0]
        else:
            missing.append(row.id)
    if missing:
        message = (
            f"{len(missing)} of {len(rows)} image(s) listed in {csv_path} are missing from {folder}: "
            f"{_first(missing)}"
        )
        if not skip_missing:
            raise ValueError(message + " (pass skip_missing=True to skip them)")
        logger.warning("skipped %s", message)
    if not found:
        raise ValueError(f"none of the {len(rows)} image(s) listed in {csv_path} is in {folder}")
    listed = set(found.values())
    unlisted = sorted({f.name for files in index.values() for f in files if f not in listed})
    if unlisted:
        logger.warning(
            "%d image(s) in %s are not listed in %s and are not used: %s", len(unlisted), folder, csv_path,
            _first(unlisted),
        )
    return found


def _check_class_names(class_names: Sequence[str] | None) -> list[str] | None:
    """``class_names`` as a list of distinct non-empty strings (or ``None``)."""
    if class_names is None:
        return None
    names = [class_names] if isinstance(class_names, str) else [str(n) for n in class_names]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct, non-empty names, got {class_names!r}")
    return names


def _index_labels(path: Path, column: str, rows: Sequence[CsvRow], class_names: list[str] | None) -> tuple[dict[str, int], list[str]]:
    """Labels of an ``id,label`` CSV (class names or indices) as class indices, and the class names."""
    values = {row.id: cell_value(path, row, column) for row in rows}
    integers = all(re.fullmatch(r"\d+", v) for v in values.values())
    if class_names is None:
        if integers:
            class_names = [str(i) for i in range(max(int(v) for v in values.values()) + 1)]
        else:
            class_names = sorted(set(values.values()))
    position = {name: i for i, name in enumerate(class_names)}
    labels: dict[str, int] = {}
    for row in rows:
        value = values[row.id]
        if value in position:
            labels[row.id] = position[value]
        elif re.fullmatch(r"\d+", value) and int(value) < len(class_names):
            labels[row.id] = int(value)
        else:
            raise ValueError(
                f"label CSV {path}, row {row.line} (id {row.id!r}): label {value!r} in column {column!r} is neither "
                f"a class name of class_names={class_names} nor a class index 0..{len(class_names) - 1}"
            )
    return labels, class_names


def _indicator_labels(
    path: Path, columns: list[str], rows: Sequence[CsvRow], class_names: list[str] | None, multi_label: bool | None
) -> tuple[dict[str, Any], list[str], bool]:
    """Labels of an ``id,label_1,...,label_k`` CSV: class indices (single-label) or 0/1 float vectors (multi-label)."""
    if class_names is None:
        class_names = list(columns)
    elif set(class_names) != set(columns):
        missing = [n for n in class_names if n not in columns]
        extra = [c for c in columns if c not in class_names]
        raise ValueError(
            f"label CSV {path}: its label columns {columns} do not match class_names={class_names} "
            f"(classes without a column: {missing or 'none'}; columns that are no class: {extra or 'none'})"
        )
    vectors = {row.id: [binary_cell(path, row, name) for name in class_names] for row in rows}
    if multi_label is None:
        multi_label = any(sum(v) > 1 for v in vectors.values())
        logger.info("label CSV %s read as %s", path, "multi-label (a row sets several classes)" if multi_label
                    else "single-label (no row sets several classes)")
    if multi_label:
        return {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}, class_names, True
    labels: dict[str, int] = {}
    for row in rows:
        vector = vectors[row.id]
        if sum(vector) != 1:
            set_names = [n for n, v in zip(class_names, vector) if v]
            raise ValueError(
                f"label CSV {path}, row {row.line} (id {row.id!r}): a single-label row must set exactly one of "
                f"{class_names}, but it sets {len(set_names)} ({set_names or 'none'}); pass multi_label=True for a "
                "multi-label task"
            )
        labels[row.id] = vector.index(1)
    return labels, class_names, False


def label_csv_datalist(
    csv_path: str | os.PathLike,
    image_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    multi_label: bool | None = None,
    id_column: str | None = None,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
    skip_missing: bool = False,
) -> tuple[list[dict], list[str]]:
    """List the images of a label CSV with their labels.

    Args:
        csv_path: the CSV, ``id,label`` or ``id,label_1,...,label_k`` (see the module docstring).
        image_dir: the folder holding the images, named ``<id>`` or ``<id><extension>``.
        class_names: the classes in label order. ``id,label``: the names the label cells may hold
            (a cell may also hold an index into this list); default: the sorted distinct names, or
            ``"0"`` .. ``"<max index>"`` when every cell is an integer. One column per class: the
            column names, in any order (the labels follow this order); default: the columns in
            file order. Pass the training CSV's names when reading another split.
        multi_label: one column per class only: ``True`` allows any number of classes per row;
            ``False`` requires exactly one; ``None`` reads the CSV as multi-label when some row
            sets several classes. ``True`` with an ``id,label`` CSV is an error.
        id_column: the id column; default: the first column.
        extensions: image file endings (case-insensitive).
        skip_missing: skip rows whose image is missing, with one warning giving their count,
            instead of raising.

    Returns:
        ``(items, class_names)``: items ``{"image": absolute path, "label": ..., "id": id}`` in CSV
        order, where the label is an ``int`` class index (single-label) or a float32 array of
        ``len(class_names)`` 0/1 values (multi-label; an array, not a list, so that a batch
        collates to a ``(B, K)`` tensor, the target of ``BCEWithLogitsLoss``).

    Raises:
        FileNotFoundError: the CSV or the image folder is missing.
        ValueError: a malformed CSV (see :func:`read_label_csv`); label columns that do not match
            ``class_names`` (both named); an empty or NaN cell, a non-0/1 indicator, an unknown
            label name or index, or a single-label row setting zero or several classes (file, row
            and id named); missing images without ``skip_missing`` (count and ids named).
    """
    path = Path(os.path.abspath(csv_path))
    names = _check_class_names(class_names)
    if multi_label is not None and not isinstance(multi_label, bool):
        raise ValueError(f"multi_label must be True, False or None, got {multi_label!r}")
    columns, rows = read_label_csv(path, id_column)
    folder, index = index_images(image_dir, extensions)
    images = match_images(path, rows, folder, index, bool(skip_missing))
    rows = [row for row in rows if row.id in images]
    labels: dict[str, Any]
    if len(columns) == 1:
        if multi_label:
            raise ValueError(
                f"label CSV {path}: multi_label=True needs one 0/1 column per class (id,label_1,...,label_k), "
                f"but the CSV has the single label column {columns[0]!r}"
            )
        labels, names = _index_labels(path, columns[0], rows, names)
        multi_label = False
    else:
        labels, names, multi_label = _indicator_labels(path, columns, rows, names, multi_label)
    items = [{"image": str(images[row.id]), "label": labels[row.id], "id": row.id} for row in rows]
    logger.info(
        "label CSV %s: %d %s items, classes %s, images from %s",
        path, len(items), "multi-label" if multi_label else "single-label", names, folder,
    )
    return items, names
