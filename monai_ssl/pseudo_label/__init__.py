"""Pseudo-labeling rounds: score the unlabeled pool, keep the most confident predictions, retrain."""

from __future__ import annotations

from .round_state import RoundProgress
from .rounds import PseudoLabelRounds, round_scalars
from .scoring import logits_to_probabilities, score_pool
from .selection import check_selection_args, select_pseudo_labels

__all__ = [
    "PseudoLabelRounds",
    "RoundProgress",
    "check_selection_args",
    "logits_to_probabilities",
    "round_scalars",
    "score_pool",
    "select_pseudo_labels",
]
