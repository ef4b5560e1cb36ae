"""What the synthetic demos share: the marker file, building a demo atomically, reusing a finished one.

A finished demo folder holds the marker file :data:`DEMO_MARKER`, written last, with the demo's
parameters as JSON. The OCT and ISIC demos name their kind in its ``"dataset"`` field; the MRNet
demo's marker predates that field, so for it (``kind=None`` below) any marker counts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_ssl.utils.atomic import atomic_directory, is_empty_dir

__all__ = [
    "DEMO_MARKER",
    "build_demo",
    "check_integer",
    "check_range",
    "dataset_or_demo",
    "ensure_demo",
    "is_demo",
    "read_demo_marker",
]

logger = logging.getLogger("monai_ssl")

DEMO_MARKER = ".monai_ssl_demo"


def check_integer(creator: str, name: str, value: Any, low: int) -> int:
    """Validate an integer parameter ``value >= low`` (``bool`` is refused).

    Args:
        creator: the function named in the error message, e.g. ``"make_oct_demo"``.
        name: the parameter's name.
        value: the value to check.
        low: the smallest allowed value.

    Returns:
        ``int(value)``.

    Raises:
        ValueError: ``value`` is not an integer or is below ``low``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{creator}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_range(creator: str, name: str, value: Sequence[int], low: int) -> list[int]:
    """Validate an inclusive ``(low, high)`` integer range with ``low <= range[0] <= range[1]``.

    Args:
        creator: the function named in the error message.
        name: the parameter's name.
        value: the range to check (any sequence of two integers but a string).
        low: the smallest allowed lower end.

    Returns:
        The range as a list of two Python ints.

    Raises:
        ValueError: ``value`` is not such a range.
    """
    pair = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []
    integers = len(pair) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    if not integers or not low <= pair[0] <= pair[1]:
        raise ValueError(f"{creator}: {name} must be (low, high) integers with {low} <= low <= high, got {value!r}")
    return [int(v) for v in pair]


def read_demo_marker(root: str | os.PathLike) -> dict[str, Any] | None:
    """The parameters in ``root``'s demo marker.

    Args:
        root: the folder to look in.

    Returns:
        The marker's JSON object; ``{}`` for a marker that cannot be read or is not a JSON
        object; ``None`` when there is no marker.
    """
    path = Path(root) / DEMO_MARKER
    if not path.is_file():
        return None
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return params if isinstance(params, dict) else {}


def _is_kind(params: dict[str, Any] | None, kind: str | None) -> bool:
    """Whether marker parameters (from :func:`read_demo_marker`) belong to a demo of ``kind``."""
    return params is not None and (kind is None or params.get("dataset") == kind)


def is_demo(root: str | os.PathLike, kind: str | None) -> bool:
    """Whether ``root`` is a finished demo of ``kind``.

    Args:
        root: the folder to look at.
        kind: the marker's ``"dataset"`` value, e.g. ``"oct2017"``; ``None``: any marker.

    Returns:
        True when the marker is present and, for a ``kind``, names it.
    """
    return _is_kind(read_demo_marker(root), kind)


def build_demo(
    root: str | os.PathLike, params: dict[str, Any], write: Callable[[Path, dict[str, Any]], None], creator: str
) -> Path:
    """Create the demo folder ``root`` atomically: ``write(folder, params)``, then the marker, then one rename.

    Args:
        root: the folder to create (new or an empty folder).
        params: the validated, JSON-ready parameters; the marker holds them.
        write: writes the demo's files into a folder.
        creator: who is creating, for :func:`~monai_ssl.utils.atomic.atomic_directory`'s errors.

    Returns:
        ``Path(root)``.

    Raises:
        FileExistsError: ``root`` exists and is not an empty folder.
    """

    def write_all(folder: Path) -> None:
        write(folder, params)
        text = json.dumps(params, sort_keys=True, indent=1) + "\n"
        (folder / DEMO_MARKER).write_text(text, encoding="utf-8")

    return atomic_directory(root, write_all, creator=creator)


def ensure_demo(
    root: str | os.PathLike,
    requested: dict[str, Any],
    make: Callable[[Path], Path],
    *,
    kind: str | None,
    label: str,
) -> Path:
    """Return ``root`` holding a finished demo of ``kind``, calling ``make(root)`` when it is new or empty.

    A finished demo of ``kind`` is reused as it is, with a warning when its marker differs from
    ``requested``. A concurrent creator that finishes first is fine.

    Args:
        root: the demo folder.
        requested: the validated parameters of this request (as the marker would hold them).
        make: creates the demo at a path (new or empty) and returns it.
        kind: the marker's ``"dataset"`` value; ``None``: any marker counts.
        label: the demo's name in messages, e.g. ``"OCT"``.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``root`` exists, is not empty and is not a demo of ``kind`` (no marker, or
            another kind's marker): demo files are never written into someone's real data folder.
    """
    root = Path(root)
    if read_demo_marker(root) is None and (not root.exists() or is_empty_dir(root)):
        try:
            return make(root)
        except FileExistsError:
            if not is_demo(root, kind):  # a concurrent creator that finished first is fine
                raise
    existing = read_demo_marker(root)
    if _is_kind(existing, kind):
        if existing != requested:
            message = f"reusing the synthetic {label} demo at %s made with %s; requested %s"
            logger.warning(message, root, existing, requested)
        return root
    noun = "monai_ssl demo" if kind is None else f"monai_ssl {label} demo"
    reason = "its marker belongs to another kind of demo" if existing is not None else f"no {DEMO_MARKER} marker"
    raise ValueError(
        f"{root} exists, is not empty and is not a {noun} ({reason}); refusing to write demo files "
        "into it: point the demo at a new or empty folder"
    )


def dataset_or_demo(dataset_dir: str | os.PathLike, demo_dir: str | os.PathLike, make_demo: Any, **kwargs: Any) -> Any:
    """The data a bundle reads: its built-in demo (made on first use) when ``dataset_dir`` is the bundle's own
    ``demo_dir``, otherwise ``dataset_dir`` as given (a user's folder is never written to).

    Args:
        dataset_dir: the ``dataset_dir`` setting.
        demo_dir: the bundle's ``demo_data`` folder.
        make_demo: the demo's ``ensure_*_demo`` function.
        kwargs: its arguments (sizes of the demo).
    """
    if str(dataset_dir) == str(demo_dir):
        return make_demo(demo_dir, **kwargs)
    return dataset_dir


def demo_or_dataset_value(dataset_dir: str | os.PathLike, demo_dir: str | os.PathLike, demo_value: Any,
                          dataset_value: Any) -> Any:
    """``demo_value`` when the bundle runs on its built-in demo, else ``dataset_value``.

    For defaults that follow a paper on real data but would make the demo take hours: the dermoscopy
    bundle pre-trains 100 epochs (S4MI, Singh et al.) on a user's data and 2 on its 36-image demo.
    An explicit setting (``--num_epochs``) wins over both, as usual.

    Args:
        dataset_dir: the ``dataset_dir`` setting.
        demo_dir: the bundle's ``demo_data`` folder.
        demo_value: the value on the demo.
        dataset_value: the value on a user's dataset.
    """
    return demo_value if str(dataset_dir) == str(demo_dir) else dataset_value
