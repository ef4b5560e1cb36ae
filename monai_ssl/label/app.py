"""The MONAI Label app of monai_ssl: serve the trained bundles, train cross-teaching, propose the next image.

Started with ``monailabel start_server --app apps/monai_ssl --studies <images> --conf models all``
(``apps/monai_ssl/main.py`` only imports :class:`MonaiSSLApp`). App options (``--conf key value``):

- ``models``: ``all`` (default) or comma-separated bundle names;
- ``bundles``: the folder of bundles (default: the repository's ``bundles/``);
- ``preload``: ``true`` loads every network at start-up.

Each bundle with ``configs/inference.json`` and ``models/model.pt`` becomes an infer task of its
folder's name and a training task; cross-teaching bundles also get the ``disagreement`` strategy,
classifiers the ``least_confidence`` strategy. A bundle that cannot be served is logged at start-up
and listed under ``not_loaded`` in ``/info/`` with the reason; the others load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.tasks.activelearning.random import Random

import monai_ssl
from monai_ssl.label.active_learning import BundleScorer, DisagreementStrategy, LeastConfidenceStrategy, UnlabeledScoring
from monai_ssl.label.infer import BundleInfer
from monai_ssl.label.served_bundle import CLASSIFICATION, discover_bundles
from monai_ssl.label.train_classifier import ClassifierTrain
from monai_ssl.label.train_cross_teaching import CrossTeachingTrain

__all__ = ["DATASTORE_EXTENSIONS", "MonaiSSLApp"]

logger = logging.getLogger(__name__)

# MONAI Label's defaults plus the formats the bundles read (MRNet volumes are .npy, OCT images .jpeg).
DATASTORE_EXTENSIONS = sorted({*settings.MONAI_LABEL_DATASTORE_FILE_EXT, "*.jpeg", "*.npy", "*.dcm"})

REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


class MonaiSSLApp(MONAILabelApp):
    """MONAI Label app serving monai_ssl bundles (see the module docstring).

    Args:
        app_dir: the app folder (``apps/monai_ssl``).
        studies: the image folder (MONAI Label's local datastore).
        conf: ``--conf`` options: ``models``, ``bundles``, ``preload``.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = conf or {}
        self.bundles_dir = Path(conf.get("bundles") or os.environ.get("MONAI_SSL_BUNDLES") or REPO_BUNDLES)
        self.preload = str(conf.get("preload", "false")).lower() == "true"
        self.served, self.not_loaded = discover_bundles(self.bundles_dir, conf.get("models", "all"))
        for name, bundle in self.served.items():
            logger.info("monai_ssl: serving %s (%s, labels %s)", name, bundle.kind, bundle.class_names)
        for name, reason in self.not_loaded.items():
            logger.warning("monai_ssl: NOT loaded %s: %s", name, reason)
        if not self.served:
            logger.warning("monai_ssl: no bundle could be served from %s; /info/ lists the reasons", self.bundles_dir)
        self._scorers: dict[str, BundleScorer] = {}
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai_ssl",
            description="Label-efficient models of monai_ssl: cross-teaching segmentation, BYOL classifiers",
            version=monai_ssl.__version__,
        )

    def init_datastore(self) -> Datastore:  # noqa: D102
        logger.info("monai_ssl: datastore %s", self.studies)
        return LocalDatastore(
            self.studies,
            extensions=DATASTORE_EXTENSIONS,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, BundleInfer]:  # noqa: D102
        infers = {name: BundleInfer(bundle, preload=self.preload) for name, bundle in self.served.items()}
        self._scorers = {name: BundleScorer(task) for name, task in infers.items()}
        return infers

    def init_trainers(self) -> dict[str, Any]:
        """Cross-teaching for segmentation pairs, fine-tuning for classifiers that have a ``finetune.json``."""
        trainers: dict[str, Any] = {}
        for name, bundle in self.served.items():
            if bundle.is_pair:
                trainers[name] = CrossTeachingTrain(bundle, self.studies)
            elif bundle.kind == CLASSIFICATION and (bundle.path / "configs" / "finetune.json").is_file():
                trainers[name] = ClassifierTrain(bundle, self.studies)
        return trainers

    def _scorers_of(self, score_name: str) -> dict[str, BundleScorer]:
        return {n: s for n, s in self._scorers.items() if s.score_name == score_name}

    def init_strategies(self) -> dict[str, Any]:  # noqa: D102
        strategies: dict[str, Any] = {"random": Random()}
        if self._scorers_of("disagreement"):
            strategies["disagreement"] = DisagreementStrategy(self._scorers_of("disagreement"))
        if self._scorers_of("least_confidence"):
            strategies["least_confidence"] = LeastConfidenceStrategy(self._scorers_of("least_confidence"))
        return strategies

    def init_scoring_methods(self) -> dict[str, Any]:  # noqa: D102
        return {
            name: UnlabeledScoring(self._scorers_of(name), f"Score the unlabeled images ({name})")
            for name in ("disagreement", "least_confidence")
            if self._scorers_of(name)
        }

    def info(self) -> dict[str, Any]:
        """MONAI Label's info plus ``not_loaded``: bundle name -> why it is not served."""
        info = super().info()
        info["not_loaded"] = dict(self.not_loaded)
        return info

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        """MONAI Label's active learning, with 404 for an unknown strategy or a model it cannot score with."""
        strategy = request.get("strategy") or "random"
        if strategy not in self._strategies:
            raise HTTPException(status_code=404, detail=f"unknown strategy {strategy!r}; strategies: {sorted(self._strategies)}")
        try:
            return super().next_sample(request)
        except ValueError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> Any:
        """MONAI Label's infer, with 4xx answers for an unknown model or image and an unreadable image."""
        model = request.get("model")
        if model not in self._infers:
            reason = f" (not loaded: {self.not_loaded[model]})" if model in self.not_loaded else ""
            raise HTTPException(status_code=404, detail=f"unknown model {model!r}{reason}; models: {sorted(self._infers)}")
        image = request.get("image")
        store = datastore or self.datastore()
        if isinstance(image, str) and not os.path.exists(image) and not store.get_image_uri(image):
            raise HTTPException(status_code=404, detail=f"unknown image {image!r}: not in the datastore {self.studies}")
        try:
            return super().infer(request, datastore)
        except HTTPException:
            raise
        except Exception as err:  # the model cannot read this image: a client error, the server keeps serving
            logger.exception("monai_ssl: %s failed on image %s", model, image)
            raise HTTPException(
                status_code=422, detail=f"model {model!r} cannot process image {image!r}: {type(err).__name__}: {err}"
            ) from err
