"""The cells of a study (protocol x label budget x seed), their folders, and what is already finished.

Every cell has its own folder; when it ends (trained and evaluated, or skipped because its label
budget does not fit the data) its result is written atomically to ``cell.json`` in that folder.
A cell is finished exactly when that file says so: a cell killed halfway has none, its folder is
cleared, and it runs again. A failed cell is retried on the next invocation.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_ssl.utils import atomic_write_text

__all__ = [
    "RESULT_FILE",
    "Budget",
    "Cell",
    "build_grid",
    "check_protocols",
    "is_finished",
    "parse_fractions",
    "parse_seeds",
    "parse_shots",
    "read_result",
    "reset_dir",
    "runs_at",
    "write_result",
]

RESULT_FILE = "cell.json"


@dataclass(frozen=True)
class Budget:
    """How many labels a cell trains on: a fraction of every class, or a count per class (``shots``)."""

    kind: str
    value: float | int

    @property
    def column(self) -> str:
        """The CSV column of the budget: ``fraction`` or ``shots_per_class``."""
        return "fraction" if self.kind == "fraction" else "shots_per_class"

    @property
    def no_labels(self) -> bool:
        """The fraction 0: the column where only label-free protocols run (study.json ``"label_free": true``)."""
        return self.kind == "fraction" and self.value == 0

    @property
    def name(self) -> str:
        """Folder-safe name, e.g. ``fraction_0.1`` or ``shots_5``."""
        return f"{self.kind}_{self.value:g}"

    @property
    def label(self) -> str:
        """Short text for tables and plots, e.g. ``10%`` or ``5/class``."""
        if self.kind == "fraction":
            return f"{100 * self.value:g}%"
        return f"{self.value}/class"

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


@dataclass(frozen=True)
class Cell:
    """One training run of the study: a protocol at a label budget with a seed."""

    protocol: str
    budget: Budget
    seed: int

    @property
    def relative_dir(self) -> Path:
        """The cell's folder under the study's output folder."""
        return Path("cells") / self.protocol / self.budget.name / f"seed_{self.seed}"

    def __str__(self) -> str:
        return f"{self.protocol} {self.budget} seed={self.seed}"


def _split(values: str | Iterable[Any], setting: str) -> list[Any]:
    """A comma-separated string or an iterable as a list of items (strings stripped)."""
    if isinstance(values, str):
        items = [v.strip() for v in values.split(",") if v.strip()]
    elif isinstance(values, (int, float)):
        items = [values]
    else:
        items = list(values)
    if not items:
        raise ValueError(f"{setting}: the list is empty; give at least one value")
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{setting}: {item!r} is listed twice")
        seen.add(item)
    return items


def parse_fractions(values: str | Iterable[float | str], setting: str = "fractions",
                    allow_zero: bool = False) -> list[Budget]:
    """Label fractions in (0, 1], e.g. ``"0.01,0.1,1.0"``, as budgets in the given order.

    With ``allow_zero``, 0 is accepted too: the column of no labels at all (label ``0%``, folder
    ``fraction_0``), where only label-free protocols run (study.json ``"label_free": true``, e.g.
    PiCIE, Cho et al. CVPR 2021, as the 0 % column of the S4MI paper's Figure 5).

    Raises:
        ValueError: an empty list, a repeated value, a non-number or a value outside (0, 1] (``[0, 1]``
            with ``allow_zero``); the message names ``setting``.
    """
    budgets = []
    for item in _split(values, setting):
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{setting}: {item!r} is not a number") from None
        low_ok = 0 <= number if allow_zero else 0 < number
        if isinstance(item, bool) or not math.isfinite(number) or not (low_ok and number <= 1):
            span = "[0, 1] (0: no labels, for label-free protocols)" if allow_zero else "(0, 1]"
            raise ValueError(f"{setting}: label fraction {item!r} is outside {span}")
        budgets.append(Budget("fraction", number + 0.0))  # + 0.0: -0.0 reads as 0
    if len({b.value for b in budgets}) != len(budgets):
        raise ValueError(f"{setting}: a fraction is listed twice in {values!r}")
    return budgets


def _integers(values: str | Iterable[int | str], setting: str, minimum: int, what: str) -> list[int]:
    numbers = []
    for item in _split(values, setting):
        text = str(item).strip()
        if isinstance(item, bool) or not text.lstrip("-").isdigit():
            raise ValueError(f"{setting}: {item!r} is not an integer")
        if int(text) < minimum:
            raise ValueError(f"{setting}: {what} must be >= {minimum}, got {int(text)}")
        numbers.append(int(text))
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{setting}: a value is listed twice in {values!r}")
    return numbers


def parse_shots(values: str | Iterable[int | str], setting: str = "shots") -> list[Budget]:
    """Labeled images per class (integers >= 1), e.g. ``"5,10,20"``, as budgets.

    Raises:
        ValueError: an empty list, a repeated value, or a value that is not an integer >= 1.
    """
    return [Budget("shots", k) for k in _integers(values, setting, 1, "labeled images per class")]


def parse_seeds(values: str | Iterable[int | str], setting: str = "seeds") -> list[int]:
    """Seeds (integers >= 0), e.g. ``"0,1,2"`` or ``[0, 1, 2]``.

    Raises:
        ValueError: an empty list, a repeated seed or a value that is not an integer >= 0.
    """
    return _integers(values, setting, 0, "a seed")


def check_protocols(
    names: str | Iterable[str], known: Sequence[str], setting: str = "protocols", what: str = "protocol"
) -> list[str]:
    """The chosen protocol (or metric, ``what``) names, checked against the bundle's.

    Raises:
        ValueError: an empty list, a repeated name, or a name the bundle does not define (all known
            names are listed).
    """
    chosen = [str(n) for n in _split(names, setting)]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ValueError(f"{setting}: unknown {what}(s) {unknown}; the bundle's study.json defines {list(known)}")
    return chosen


def runs_at(budget: Budget, label_free: bool) -> bool:
    """Whether a protocol runs at ``budget``: a label-free one only at fraction 0, any other only above 0.

    A label-free protocol (study.json ``"label_free": true``) trains on no label, so it has one
    column, the 0 % one; every other protocol needs labels, so it has no cell there.
    """
    return budget.no_labels == bool(label_free)


def build_grid(protocols: Sequence[str], budgets: Sequence[Budget], seeds: Sequence[int],
               label_free: Iterable[str] = ()) -> list[Cell]:
    """All cells, seed by seed, then budget, then protocol.

    This order completes a whole table (every protocol at every budget) for the first seed before
    the next seed starts, so an interrupted study already shows every comparison. The protocols in
    ``label_free`` get a cell only at fraction 0, the others only at budgets above 0
    (:func:`runs_at`); a left-out pair is ``n/a`` in the reports.
    """
    free = set(label_free)
    return [Cell(p, b, s) for s in seeds for b in budgets for p in protocols if runs_at(b, p in free)]


def read_result(folder: str | Path) -> dict[str, Any] | None:
    """The result saved in ``folder/cell.json``, or ``None`` when there is none (or it is unreadable)."""
    path = Path(folder) / RESULT_FILE
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) else None


def is_finished(result: Mapping[str, Any] | None) -> bool:
    """Whether a saved result ends its cell: status ``ok`` or ``skipped: ...`` (a failure is retried)."""
    if not result:
        return False
    status = str(result.get("status", ""))
    return status == "ok" or status.startswith("skipped")


def write_result(folder: str | Path, result: Mapping[str, Any]) -> Path:
    """Save ``result`` to ``folder/cell.json`` atomically; the cell counts as finished once it is there."""
    return atomic_write_text(json.dumps(dict(result), indent=2, sort_keys=True) + "\n", Path(folder) / RESULT_FILE)


def reset_dir(folder: str | Path, root: str | Path) -> Path:
    """Empty ``folder`` (the leftovers of a killed or failed run) and create it; it must lie under ``root``.

    Raises:
        ValueError: ``folder`` is not inside ``root`` (a guard against deleting the wrong tree).
    """
    folder, root = Path(folder).resolve(), Path(root).resolve()
    if root == folder or root not in folder.parents:
        raise ValueError(f"reset_dir: {folder} is not inside the study folder {root}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
