"""One split policy for every bundle: which ids train, which choose the model, which are reported on.

A :class:`Splits` holds the id sets of one experiment and refuses, with both names, what would make a
reported figure optimistic:

- two sets that share an id (a training image in validation or test, a labeled image in the
  unlabeled pool, an extra unlabeled folder that repeats validation or test ids);
- model selection (best checkpoint, best round, early stopping) on the split that is reported.

The bundles build one from their datalists (:func:`segmentation_splits`, :func:`mrnet_splits`,
:func:`train_val_datalists`) and take what they train on from it, so the rules are written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OPTIMISTIC_NOTE",
    "SPLIT_NAMES",
    "SelectionSplitError",
    "SplitOverlapError",
    "Splits",
    "evaluation_split_note",
    "ids_of",
    "reserved_ids",
]

logger = logging.getLogger("monai_ssl")

SPLIT_NAMES = ("train", "labeled", "unlabeled", "validation", "test")
OPTIMISTIC_NOTE = "selection split: optimistic"


class SplitOverlapError(ValueError):
    """Two id sets of a :class:`Splits` that must be disjoint share ids (the message names both sets)."""


class SelectionSplitError(ValueError):
    """Model selection on the split whose figures are reported (the message names the split)."""


def ids_of(items: Iterable[Mapping[str, Any] | str]) -> frozenset[str]:
    """The ids of datalist items (``item["id"]``), or of ids given as strings."""
    ids = set()
    for position, item in enumerate(items):
        if isinstance(item, str):
            ids.add(item)
        elif "id" in item:
            ids.add(str(item["id"]))
        else:
            raise ValueError(f"Splits: item {position} has no 'id' key; ids tell the splits apart.")
    return frozenset(ids)


@dataclass(frozen=True)
class Splits:
    """The id sets of one experiment, checked on construction.

    Args:
        train: every id trained on (labeled and unlabeled together).
        validation: ids that choose the model; never trained on.
        test: ids that the results are reported on; never trained on, never used for selection.
        labeled: the training ids whose labels are used (default: all of ``train``).
        unlabeled: the training ids used without labels (default: none).
        selection: the name of the split that chooses the model.
        reported: the name of the split that the results are reported on.

    Raises:
        SplitOverlapError: two sets share ids (other than labeled/unlabeled within train), or
            labeled/unlabeled ids outside ``train``.
        SelectionSplitError: ``selection == reported``.
    """

    train: frozenset[str]
    validation: frozenset[str]
    test: frozenset[str] = frozenset()
    labeled: frozenset[str] | None = None
    unlabeled: frozenset[str] = frozenset()
    selection: str = "validation"
    reported: str = "test"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("train", "validation", "test", "unlabeled"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        object.__setattr__(self, "labeled", frozenset(self.train if self.labeled is None else self.labeled))
        if self.selection == self.reported:
            raise SelectionSplitError(
                f"the model would be chosen on '{self.selection}', the split the results are reported on "
                f"('{self.reported}'): the reported figures would be optimistic. Choose on a validation split "
                "or a hold-out of the training split."
            )
        sets = {name: getattr(self, name) for name in SPLIT_NAMES}
        for a, b in (("labeled", "unlabeled"), ("train", "validation"), ("train", "test"), ("validation", "test"),
                     ("unlabeled", "validation"), ("unlabeled", "test")):
            shared = sets[a] & sets[b]
            if shared:
                raise SplitOverlapError(
                    f"{len(shared)} id(s) are in both '{a}' ({self._where(a)}) and '{b}' ({self._where(b)}), "
                    f"e.g. {sorted(shared)[:3]}; each image belongs to one split."
                )
        for part in ("labeled", "unlabeled"):
            outside = sets[part] - sets["train"]
            if outside:
                raise SplitOverlapError(f"{len(outside)} '{part}' id(s) are not in 'train', e.g. {sorted(outside)[:3]}.")

    def _where(self, name: str) -> str:
        return self.sources.get(name, f"{len(getattr(self, name))} ids")

    @classmethod
    def from_datalists(cls, train: Sequence[Mapping[str, Any]], validation: Sequence[Mapping[str, Any]],
                       test: Sequence[Mapping[str, Any]] = (), **kwargs: Any) -> Splits:
        """A :class:`Splits` of datalist items (their ``"id"`` s)."""
        return cls(train=ids_of(train), validation=ids_of(validation), test=ids_of(test), **kwargs)

    @property
    def reserved(self) -> frozenset[str]:
        """The ids no training stream may hold: validation and test."""
        return self.validation | self.test


def reserved_ids(splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The ids of a bundle's ``splits`` dict that must stay out of training: its ``"val"`` and ``"test"`` items."""
    return sorted(ids_of(splits.get("val", ())) | ids_of(splits.get("test", ())))


def evaluation_split_note(split: str, selection_split: str | None, evaluate_on_selection_split: bool = False) -> str:
    """What a report on ``split`` says about it: ``"reported split"``, or :data:`OPTIMISTIC_NOTE` when the model
    was chosen on that split and the user asked for it by name.

    Args:
        split: the split ``evaluate.json`` reports on (``--split``).
        selection_split: the split the model was chosen on (``None``: unknown).
        evaluate_on_selection_split: the user's explicit request to evaluate on the selection split.

    Raises:
        SelectionSplitError: ``split == selection_split`` without the request.
    """
    if selection_split is None or split != selection_split:
        return "reported split"
    if not evaluate_on_selection_split:
        raise SelectionSplitError(
            f"--split {split} is the split the model was chosen on (selection_split '{selection_split}'): its figures "
            "are optimistic. Report on another split, or pass --evaluate_on_selection_split True to see them anyway; "
            f"metrics.json then says '{OPTIMISTIC_NOTE}'."
        )
    logger.warning(f"evaluating on '{split}', the split the model was chosen on: the figures are optimistic")
    return OPTIMISTIC_NOTE
