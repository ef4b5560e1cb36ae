"""Pseudo-labeling rounds: score the unlabeled pool, keep the most confident predictions, retrain in a fresh run."""

from __future__ import annotations

from .round_datalist import round_training_items
from .round_folder import ROUND_KEYS, RoundFolder, round_overrides
from .round_state import RoundProgress
from .rounds import PseudoLabelRounds
from .tables import round_scalars
from .scoring import logits_to_probabilities, score_pool
from .selection import check_selection_args, select_pseudo_labels

__all__ = [
    "ROUND_KEYS",
    "PseudoLabelRounds",
    "RoundFolder",
    "RoundProgress",
    "check_selection_args",
    "logits_to_probabilities",
    "round_overrides",
    "round_scalars",
    "round_training_items",
    "score_pool",
    "select_pseudo_labels",
]
