"""The MONAI Label app of monai_ssl: serve the trained bundles, train cross-teaching, propose the next image.

Started with ``monailabel start_server --app apps/monai_ssl --studies <images> --conf models all``
(``apps/monai_ssl/main.py`` only imports :class:`MonaiSSLApp`). App options (``--conf key value``):

- ``models``: ``all`` (default) or comma-separated bundle names;
- ``bundles``: the folder of bundles (default: the repository's ``bundles/``);
- ``preload``: ``true`` loads every network at start-up;
- ``max_megapixels`` (default 100): images above it are refused (413) before they are decoded, and left
  out of scoring and training;
- ``max_upload_mb`` (default 1024): the largest upload, image or label.

Each bundle with ``configs/inference.json`` and ``models/model.pt`` becomes an infer task of its
folder's name and a training task; cross-teaching bundles also get the ``disagreement`` strategy,
classifiers the ``least_confidence`` strategy. A bundle that cannot be served is logged at start-up
and listed under ``not_loaded`` in ``/info/`` with the reason; the others load.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.tasks.activelearning.random import Random

import monai_ssl
from monai_ssl.label.active_learning import BundleScorer, DisagreementStrategy, LeastConfidenceStrategy, UnlabeledScoring
from monai_ssl.label.datastore import GuardedDatastore
from monai_ssl.label.datastore_items import match_class
from monai_ssl.label.errors import NotFound, Unprocessable
from monai_ssl.label.image_checks import require_servable_image
from monai_ssl.label.infer import INFERENCE_LOCK, BundleInfer
from monai_ssl.label.request_values import check_keys, device_name, strict_bool
from monai_ssl.label.served_bundle import CLASSIFICATION, discover_bundles
from monai_ssl.label.train_classifier import ClassifierTrain
from monai_ssl.label.train_cross_teaching import CrossTeachingTrain, trains_cross_teaching
from monai_ssl.label.train_task import TRAIN_REQUEST_KEYS, RunSettings

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
        conf: ``--conf`` options: ``models``, ``bundles``, ``preload``, ``max_megapixels``, ``max_upload_mb``.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = conf or {}
        self.max_megapixels = _positive(conf, "max_megapixels", 100.0)
        self.max_upload_bytes = int(_positive(conf, "max_upload_mb", 1024.0) * 2**20)
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
        return GuardedDatastore(
            self.studies,
            extensions=DATASTORE_EXTENSIONS,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, BundleInfer]:  # noqa: D102
        infers = {name: BundleInfer(bundle, preload=self.preload) for name, bundle in self.served.items()}
        self._scorers = {name: BundleScorer(task, max_megapixels=self.max_megapixels) for name, task in infers.items()}
        return infers

    def init_trainers(self) -> dict[str, Any]:
        """Cross-teaching for segmentation pairs (and for a cross-teaching bundle that serves PiCIE as its zero-label
        start), fine-tuning for classifiers that have a ``finetune.json``."""
        trainers: dict[str, Any] = {}
        for name, bundle in self.served.items():
            if trains_cross_teaching(bundle):
                trainers[name] = CrossTeachingTrain(bundle, self.studies, self.max_megapixels)
            elif bundle.kind == CLASSIFICATION and (bundle.path / "configs" / "finetune.json").is_file():
                trainers[name] = ClassifierTrain(bundle, self.studies, self.max_megapixels)
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
            raise NotFound(f"unknown strategy {_shown(strategy)}; strategies: {sorted(self._strategies)}")
        try:
            return super().next_sample(request)
        except ValueError as err:
            raise NotFound(str(err)) from err

    def on_init_complete(self) -> None:
        """MONAI Label's start-up, then this app's routes in front of MONAI Label's (see :mod:`~monai_ssl.label.routes`)."""
        import sys

        from monai_ssl.label.routes import install_routes

        server = sys.modules.get("monailabel.app")
        if server is not None:
            install_routes(server.app)
        else:
            logger.warning("monai_ssl: not started by `monailabel start_server`: the checked routes are not installed")
        host = _listening_host(sys.argv)
        if host not in ("127.0.0.1", "localhost", "::1") and not settings.MONAI_LABEL_AUTH_ENABLE:
            logger.warning(
                "monai_ssl: listening on %s without authentication: anyone who reaches this port can read the images, "
                "save labels and train. Use --host 127.0.0.1, or a reverse proxy that authenticates (docs/monai_label.md, "
                "section 8).", host,
            )
        super().on_init_complete()

    # ------------------------------------------------------------------ inference
    def infer_task(self, model: Any) -> BundleInfer:
        """The infer task of ``model`` (404 naming the models, and why a bundle was not loaded)."""
        if not isinstance(model, str) or model not in self._infers:
            reason = f" (not loaded: {self.not_loaded[model]})" if isinstance(model, str) and model in self.not_loaded else ""
            raise NotFound(f"unknown model {_shown(model)}{reason}; models: {sorted(self._infers)}")
        return self._infers[model]

    @staticmethod
    def check_prediction_tag(tag: Any, save_label: Any) -> str:
        """The tag a model's prediction is saved under: never ``final``, the annotator's (422)."""
        tag = GuardedDatastore.label_tag(tag or "original")
        if save_label is True and tag == "final":
            raise Unprocessable("a model's prediction is never saved as the 'final' label (the annotator's); "
                                "use label_tag 'original' or another name.")
        return tag

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> dict[str, Any]:
        """Infer on a datastore image: ``request["image"]`` is an id of the datastore, never a path.

        Answers 404 for an unknown model or id (without echoing an unsafe one), 413 for an image above
        ``max_megapixels``, 422 for a malformed parameter, a prediction to be saved as ``final``, or an
        image the model cannot read. ``save_label: true`` saves the prediction under ``label_tag``
        (default ``original``).
        """
        task = self.infer_task(request.get("model"))
        store = datastore or self.datastore()
        image = request.get("image")
        if not isinstance(image, str) or not image:
            raise Unprocessable("give the image: image=<datastore id>.")
        image_id = store.image_id(image)
        save_label = strict_bool(request, "save_label", False)
        tag = self.check_prediction_tag(request.get("label_tag"), save_label)
        path = store.get_image_uri(image_id)
        require_servable_image(path, self.max_megapixels, f"image {image_id!r}", decode=False)
        result_file, result_json = self._run_task(task, request, path, f"image {image_id!r}")
        label_id = None
        if save_label and result_file and os.path.exists(result_file):
            label_id = store.save_label(image_id, result_file, tag, {"model": task.bundle.name, "params": result_json})
        return {"label": label_id or result_file, "tag": tag, "file": result_file, "params": result_json}

    def infer_upload(self, request: dict[str, Any], path: str) -> dict[str, Any]:
        """Infer on an uploaded file that the server saved at ``path`` (nothing is stored)."""
        task = self.infer_task(request.get("model"))
        if strict_bool(request, "save_label", False):
            raise Unprocessable("save_label needs a datastore image: upload it with PUT /datastore/image first.")
        require_servable_image(path, self.max_megapixels, "the uploaded image", decode=False)
        result_file, result_json = self._run_task(task, request, path, "the uploaded image")
        return {"label": result_file, "tag": "original", "file": result_file, "params": result_json}

    def _run_task(self, task: BundleInfer, request: dict[str, Any], path: str, what: str) -> tuple[Any, Any]:
        """Run the infer task on ``path`` (one model at a time); an image it cannot read is a 422."""
        task_request = {"image": path, "description": task.description, "device": device_name(request.get("device"))}
        try:
            with INFERENCE_LOCK:
                return task(copy.deepcopy(task_request))
        except Exception as err:  # the model cannot read this image: a client error, the server keeps serving
            logger.exception("monai_ssl: %s failed on %s", task.bundle.name, what)
            message = str(err).replace(path, "<image>")
            raise Unprocessable(f"model {task.bundle.name!r} cannot process {what}: {type(err).__name__}: {message}") from err

    # ------------------------------------------------------------------ labels and training
    def class_names(self) -> list[str]:
        """The classes the served classifiers declare (in order, without repeats)."""
        names: list[str] = []
        for bundle in self.served.values():
            if bundle.kind == CLASSIFICATION:
                names += [n for n in bundle.class_names if n not in names]
        return names

    def declared_class(self, value: Any, image_id: str) -> str:
        """The class name ``value`` names (case-insensitive, or an index of a single classifier's classes); 422 otherwise."""
        names = self.class_names()
        classifiers = [b for b in self.served.values() if b.kind == CLASSIFICATION]
        index = match_class(value, names, allow_index=len(classifiers) == 1)  # an index is ambiguous across classifiers
        if index is not None:
            return names[index]
        shown = repr(value) if isinstance(value, (str, int)) and len(str(value)) <= 40 else type(value).__name__
        raise Unprocessable(f"label of image {image_id!r} not saved: {shown} is not a class of the served classifiers "
                            f"{names or '(none is served)'}.")

    def check_train_request(self, model: Any, params: dict[str, Any]) -> RunSettings:
        """Check a train request before it is queued: a known trainer (404) and strict values (422)."""
        if not isinstance(model, str) or model not in self._trainers:
            raise NotFound(f"unknown trainer {_shown(model)}; trainers: {sorted(self._trainers)}")
        if not isinstance(params, dict):
            raise Unprocessable("the train request's body must be a JSON object.")
        check_keys(params, TRAIN_REQUEST_KEYS, f"train request of {model}")
        trainer = self._trainers[model]
        return RunSettings.from_request({"model": model, **params}, self.studies, trainer.default_epochs)


def _listening_host(argv: list[str]) -> str:
    """The ``--host``/``-i`` of ``monailabel start_server`` (MONAI Label's default: ``0.0.0.0``)."""
    for i, arg in enumerate(argv):
        if arg in ("--host", "-i") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
    return "0.0.0.0"


def _shown(name: Any) -> str:
    """A name from a request as it may be echoed: quoted when it is a plain identifier, withheld otherwise."""
    return repr(name) if isinstance(name, str) and name.isidentifier() else "(as requested)"


def _positive(conf: dict[str, str], key: str, default: float) -> float:
    """A positive number of ``--conf key value``."""
    try:
        value = float(conf.get(key, default))
    except (TypeError, ValueError) as err:
        raise ValueError(f"--conf {key} must be a number, got {conf.get(key)!r}.") from err
    if not value > 0:
        raise ValueError(f"--conf {key} must be positive, got {value}.")
    return value
