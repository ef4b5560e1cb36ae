"""Active learning for MONAI Label: propose the unlabeled image a label would help most.

- ``disagreement`` (cross-teaching bundles): the image on which the CNN and the Transformer disagree
  most, :func:`~monai_ssl.label.scores.pair_disagreement`;
- ``least_confidence`` (classifiers): the image whose most probable class is least probable,
  :func:`~monai_ssl.label.scores.least_confidence`.

Scores are computed with the served model (the bundle's pre-processing and inferer) for the unlabeled
images that have no score from the current ``models/model.pt`` yet, and kept in the datastore's image
info under ``monai_ssl_scores``: a later request scores only new images, or all of them again once a
training has replaced the model.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import torch
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.interfaces.tasks.strategy import Strategy

from monai_ssl.label.image_checks import size_problem
from monai_ssl.label.infer import INFERENCE_LOCK, BundleInfer
from monai_ssl.label.request_values import device_name
from monai_ssl.label.scores import least_confidence, pair_disagreement
from monai_ssl.networks import split_pair_logits

__all__ = ["BundleScorer", "DisagreementStrategy", "LeastConfidenceStrategy", "UnlabeledScoring"]

logger = logging.getLogger(__name__)

SCORES_KEY = "monai_ssl_scores"


class BundleScorer:
    """Score images with a served bundle: pair disagreement for a cross-teaching pair, least confidence otherwise.

    Args:
        task: the bundle's infer task (its network, pre-processing and inferer are reused).
        max_megapixels: images above it are skipped, not decoded.
    """

    def __init__(self, task: BundleInfer, max_megapixels: float = 100.0) -> None:
        self.task = task
        self.max_megapixels = max_megapixels
        self.score_name = "disagreement" if task.bundle.is_pair else "least_confidence"
        self._network: torch.nn.Module | None = None
        self._network_key: tuple[str, float] | None = None

    @property
    def model_version(self) -> float:
        """The served weights' modification time; scores from another version are recomputed."""
        return os.stat(self.task.bundle.model_file).st_mtime

    def _scoring_network(self, device: str) -> torch.nn.Module:
        served = self.task.served_network(device)
        key = (device, self.model_version)
        if self._network is None or self._network_key != key:
            network = copy.deepcopy(served)
            if self.task.bundle.is_pair:
                network.output = "all"  # both networks' logits
            self._network, self._network_key = network.eval(), key
        return self._network

    def score(self, image_path: str, device: str = "cpu") -> float:
        """The score of one image file (higher: more worth labeling).

        Raises:
            ValueError: the image is above ``max_megapixels``.
        """
        problem = size_problem(image_path, self.max_megapixels)
        if problem:
            raise ValueError(problem)
        with INFERENCE_LOCK:  # one image at a time: an infer request waits for one image, not the whole pool
            return self._score(image_path, device)

    def _score(self, image_path: str, device: str) -> float:
        data: dict[str, Any] = {"image": image_path, "image_path": image_path}
        for transform in self.task.pre_transforms(data):
            data = transform(data)
        network = self._scoring_network(device)
        image = torch.as_tensor(data["image"])[None].to(device)
        with torch.inference_mode():
            logits = self.task.inferer(data)(image, network)[0].float().cpu()
        if self.task.bundle.is_pair:
            parts = split_pair_logits(logits)
            return pair_disagreement(parts["cnn"], parts["transformer"])
        return least_confidence(logits)

    def update(self, datastore: Datastore, image_ids: list[str], device: str = "cpu") -> tuple[dict[str, float], int]:
        """Scores of ``image_ids``, computing the missing or stale ones and storing them in the datastore.

        Returns:
            ``(scores, skipped)``: image id -> score, and the number of images that could not be read
            (each logged with its reason; they are not proposed).
        """
        version = self.model_version
        name = f"{self.score_name}/{self.task.bundle.name}"
        scores: dict[str, float] = {}
        skipped = 0
        todo = []
        for image_id in image_ids:
            cached = datastore.get_image_info(image_id).get(SCORES_KEY, {}).get(name)
            if cached and cached.get("model_version") == version:
                scores[image_id] = float(cached["score"])
            else:
                todo.append(image_id)
        if todo:
            logger.info("%s: scoring %d unlabeled image(s) with %s", self.score_name, len(todo), self.task.bundle.name)
        for image_id in todo:
            try:
                score = self.score(datastore.get_image_uri(image_id), device)
            except Exception as err:  # an unreadable image is skipped, not fatal to the request
                skipped += 1
                logger.warning("%s: cannot score image %s (%s); skipped", self.score_name, image_id, err)
                continue
            scores[image_id] = score
            info = datastore.get_image_info(image_id).get(SCORES_KEY, {})
            info[name] = {"score": score, "model_version": version}
            datastore.update_image_info(image_id, {SCORES_KEY: info})
        if skipped:
            logger.warning("%s: %d image(s) could not be scored and were skipped", self.score_name, skipped)
        return scores, skipped


def _pick_scorer(scorers: dict[str, BundleScorer], request: dict[str, Any], strategy: str) -> BundleScorer:
    model = request.get("model")
    if model:
        if model not in scorers:
            raise ValueError(f"strategy {strategy!r}: model {model!r} is not one of {sorted(scorers)}.")
        return scorers[model]
    return scorers[sorted(scorers)[0]]


class _ScoreStrategy(Strategy):
    """Propose the unlabeled image of highest score (ties: the first id in sorted order)."""

    def __init__(self, description: str, scorers: dict[str, BundleScorer]) -> None:
        super().__init__(description)
        if not scorers:
            raise ValueError(f"{type(self).__name__} needs at least one model to score with.")
        self.scorers = scorers

    def info(self) -> dict[str, Any]:  # noqa: D102
        return {"description": self.description, "models": sorted(self.scorers)}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:  # noqa: D102
        scorer = _pick_scorer(self.scorers, request, type(self).__name__)
        images = sorted(datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels")))
        if not images:
            logger.info("%s: every image is labeled", scorer.score_name)
            return None
        scores, skipped = scorer.update(datastore, images, device_name(request.get("device")))
        if not scores:
            return None
        best = max(sorted(scores), key=lambda i: scores[i])
        logger.info("%s: next image %s (score %.4f of %d scored)", scorer.score_name, best, scores[best], len(scores))
        return {
            "id": best,
            "score": scores[best],
            "strategy": scorer.score_name,
            "model": scorer.task.bundle.name,
            "scored": len(scores),
            "skipped": skipped,
        }


class DisagreementStrategy(_ScoreStrategy):
    """The unlabeled image on which the CNN and the Transformer of a cross-teaching model disagree most."""

    def __init__(self, scorers: dict[str, BundleScorer]) -> None:
        super().__init__("Unlabeled image where the CNN and the Swin network disagree most (1 - Dice of their masks)", scorers)


class LeastConfidenceStrategy(_ScoreStrategy):
    """The unlabeled image whose predicted class is least probable (the pseudo-label rounds' scoring)."""

    def __init__(self, scorers: dict[str, BundleScorer]) -> None:
        super().__init__("Unlabeled image with the least confident class prediction (1 - max probability)", scorers)


class UnlabeledScoring(ScoringMethod):
    """Score every unlabeled image ahead of time (``/scoring/<name>``), so that the next proposal is instant."""

    def __init__(self, scorers: dict[str, BundleScorer], description: str) -> None:
        super().__init__(description)
        self.scorers = scorers

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:  # noqa: D102
        images = sorted(datastore.get_unlabeled_images())
        device = device_name(request.get("device"))
        result = {}
        for name, scorer in sorted(self.scorers.items()):
            scores, skipped = scorer.update(datastore, images, device)
            result[name] = {"scored": len(scores), "skipped": skipped}
        return result
