"""The MONAI Label endpoints that this app answers itself: checked input, 4xx answers, work off the request loop.

MONAI Label 0.8.5's upload, label, infer, active-learning, train, scoring and batch-infer endpoints are
``async`` functions that do their blocking work on the server's event loop (one slow inference stops
``/info/`` for everyone), answer 500 for a malformed request, and leave the body of a failed upload in
the temp folder. :func:`install_routes` puts these routes in front of them, with the same paths,
parameters and authentication (MONAI Label's ``RBAC`` dependencies), so 3D Slicer and OHIF see the
same API. They:

- are plain ``def`` functions, which FastAPI runs in its thread pool: ``/info/`` answers while a model
  works;
- check every id, tag, parameter and file before anything is stored (:mod:`monai_ssl.label.names`,
  :mod:`monai_ssl.label.request_values`, :mod:`monai_ssl.label.image_checks`);
- stage uploads inside the studies folder (``.monai_ssl/uploads/``) and remove them on any failure.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, UploadFile
from monailabel.config import settings
from monailabel.endpoints import activelearning, batch_infer, infer, scoring, train
from monailabel.endpoints.infer import ResultType
from monailabel.endpoints.user.auth import RBAC, User
from monailabel.interfaces.utils.app import app_instance

from monai_ssl.label.datastore_items import class_in_text
from monai_ssl.label.errors import Conflict, NotFound, TooLarge, Unprocessable
from monai_ssl.label.image_checks import label_problem, require_servable_image
from monai_ssl.label.request_values import parse_params

__all__ = ["build_router", "install_routes", "receive_upload"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
CLASS_LABEL_EXTENSIONS = (".json", ".txt")
MAX_CLASS_LABEL_BYTES = 4096


def receive_upload(source: BinaryIO, dest: Path, max_bytes: int) -> int:
    """Copy an upload to ``dest`` in chunks, stopping at ``max_bytes`` (413); returns the size."""
    size = 0
    with open(dest, "wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the upload is larger than the server's limit of {max_bytes / 2**20:g} MB (--conf max_upload_mb).")
            out.write(chunk)
    if size == 0:
        raise Unprocessable("the uploaded file is empty (0 bytes).")
    return size


def _class_from_file(path: Path) -> Any:
    """The class a small text label file holds (:func:`~monai_ssl.label.datastore_items.class_in_text`)."""
    if path.stat().st_size > MAX_CLASS_LABEL_BYTES:
        raise Unprocessable(f"a class label file must be at most {MAX_CLASS_LABEL_BYTES} bytes.")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as err:
        raise Unprocessable("the label file is neither an image nor UTF-8 text naming a class.") from err
    if not text:
        raise Unprocessable("the label file is empty: save a mask image, or a class with params {\"class\": <name>}.")
    return class_in_text(text)


def add_image(image: str | None, replace: bool, params: str, file: UploadFile, user: str | None = None) -> dict[str, Any]:
    """``PUT /datastore/image``: a new image (409 when the id exists, unless ``replace=true``)."""
    instance = app_instance()
    store = instance.datastore()
    info = {**parse_params(params), **({"user": user} if user else {})}
    ext = store.image_extension(file.filename)
    name = os.path.basename(file.filename or "")
    image_id = store.image_id(image or name[: len(name) - len(ext)], must_exist=False)
    if image_id in store.list_images() and not replace:  # refused before the body is read
        raise Conflict(f"image {image_id!r} exists; upload with replace=true to replace it (its labels are archived).")
    with store.staging_file(ext) as staged:
        receive_upload(file.file, staged, instance.max_upload_bytes)
        require_servable_image(staged, instance.max_megapixels, "the uploaded image")
        replaced = image_id in store.list_images()
        image_id = store.add_image(image_id, str(staged), info, replace=replace)
    return {"image": image_id, "replaced": replaced}


def save_label(image: str, tag: str | None, params: str, label: UploadFile, user: str | None = None) -> dict[str, Any]:
    """``PUT /datastore/label``: a mask of the image's size, or a class the served classifiers declare."""
    instance = app_instance()
    store = instance.datastore()
    image_id = store.image_id(image)
    tag = store.label_tag(tag)
    info = {**parse_params(params), **({"user": user} if user else {})}
    filename = (label.filename or "").lower()
    ext = next((e for e in CLASS_LABEL_EXTENSIONS if filename.endswith(e)), None) or store.image_extension(filename)
    with store.staging_file(ext) as staged:
        receive_upload(label.file, staged, instance.max_upload_bytes)
        if "class" in info:
            info["class"] = instance.declared_class(info["class"], image_id)
        elif ext in CLASS_LABEL_EXTENSIONS:
            info["class"] = instance.declared_class(_class_from_file(staged), image_id)
        else:
            problem = label_problem(store.get_image_uri(image_id), staged)
            if problem:
                raise Unprocessable(f"label of image {image_id!r} not saved: {problem.replace(str(staged), '<upload>')}.")
        label_id = store.save_label(image_id, str(staged), tag, info)
    result = instance.on_save_label(image_id, label_id) or {}
    result.update({"image": image_id, "label": label_id, "tag": tag})
    return result


def run_inference(background_tasks: BackgroundTasks, model: str, image: str, session_id: str, params: str,
                  file: UploadFile | None, output: ResultType | None) -> Any:
    """``POST /infer/{model}``: a datastore id, or an uploaded file (kept only for this request)."""
    instance = app_instance()
    request = parse_params(params)
    request.update({"model": model, "image": image})
    if session_id:
        raise Unprocessable("sessions are not served by this app: upload the image (PUT /datastore/image) and infer by its id.")
    if output == ResultType.dicom_seg:
        raise Unprocessable("output=dicom_seg needs a DICOMweb datastore; this app answers image, json or all.")
    instance.infer_task(model)  # 404 before the upload is read
    if file is None:
        if not image:
            raise Unprocessable("give the image: image=<datastore id>, or upload it as the form field 'file'.")
        result = instance.infer(request)
    else:
        ext = instance.datastore().image_extension(file.filename)
        fd, path = tempfile.mkstemp(prefix="monai_ssl_infer_", suffix=ext)
        os.close(fd)
        try:
            receive_upload(file.file, Path(path), instance.max_upload_bytes)
            result = instance.infer_upload(request, path)
        finally:
            os.remove(path)
    return infer.send_response(instance.datastore(), result, output, background_tasks)


def build_router() -> APIRouter:
    """The replacing routes (see the module docstring), with MONAI Label's paths and roles."""
    router = APIRouter()
    user_role = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_USER))
    annotator_role = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_ANNOTATOR))
    admin_role = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_ADMIN))

    @router.put("/datastore/", include_in_schema=False)
    @router.put("/datastore/image", summary="Upload a new image (replace=true replaces one and archives its labels)")
    def api_add_image(image: str | None = None, replace: bool = False, params: str = Form("{}"),
                      file: UploadFile = File(...), user: User = annotator_role) -> Any:
        return add_image(image, replace, params, file, user.username)

    @router.put("/datastore/label", summary="Save a label: a mask of the image's size or a declared class")
    def api_save_label(image: str, params: str = Form("{}"), tag: str = "final", label: UploadFile = File(...),
                       user: User = annotator_role) -> Any:
        return save_label(image, tag, params, label, user.username)

    @router.post("/infer/{model}", summary="Run inference on a datastore image (or an uploaded file)")
    def api_run_inference(background_tasks: BackgroundTasks, model: str, image: str = "", session_id: str = "",
                          params: str = Form("{}"), file: UploadFile = File(None), output: ResultType | None = None,
                          user: User = user_role) -> Any:
        return run_inference(background_tasks, model, image, session_id, params, file, output)

    @router.put("/datastore/image/info", summary="Update the info of an image")
    def api_put_image_info(image: str, info: str = Form("{}"), user: User = annotator_role) -> Any:
        store = app_instance().datastore()
        return store.update_image_info(store.image_id(image), {**parse_params(info, "info"), "user": user.username})

    @router.put("/datastore/label/info", summary="Update the info of a label")
    def api_put_label_info(label: str, tag: str, info: str = Form("{}"), user: User = annotator_role) -> Any:
        store = app_instance().datastore()
        return store.update_label_info(label, tag, {**parse_params(info, "info"), "user": user.username})

    @router.post("/activelearning/{strategy}", summary="Propose the next image to label")
    def api_sample(strategy: str, params: dict | None = None, user: User = user_role) -> Any:
        return activelearning.sample(strategy, params, user.username)

    @router.post("/train/", include_in_schema=False)
    def api_train_all(params: dict | None = None, run_sync: bool = False, user: User = admin_role) -> Any:
        instance = app_instance()
        for model in instance.info()["trainers"]:
            instance.check_train_request(model, (params or {}).get(model) or {})
        return train.run(params, run_sync)

    @router.post("/train/{model}", summary="Train a model from the datastore's labels")
    def api_train(model: str, params: dict | None = None, run_sync: bool = False, enqueue: bool = False,
                  user: User = admin_role) -> Any:
        app_instance().check_train_request(model, params or {})
        return train.run_model(model, params, run_sync, enqueue)

    @router.post("/scoring/{method}", summary="Score the unlabeled images ahead of time")
    def api_scoring(method: str, params: dict | None = None, run_sync: bool = False, user: User = annotator_role) -> Any:
        methods = app_instance().info()["scoring"]
        if method not in methods:
            raise NotFound(f"unknown scoring method {method!r}; methods: {sorted(methods)}")
        return scoring.run_method(method, params, run_sync)

    @router.post("/batch/infer/{model}", summary="Run inference on many datastore images")
    def api_batch_infer(model: str, images: batch_infer.BatchInferImageType = batch_infer.BatchInferImageType.IMAGES_ALL,
                        params: dict | None = None, run_sync: bool = False, user: User = admin_role) -> Any:
        instance = app_instance()
        instance.infer_task(model)
        instance.check_prediction_tag((params or {}).get("label_tag", "original"), (params or {}).get("save_label", True))
        return batch_infer.run(model, images, params, run_sync)

    return router


def install_routes(app: Any, prefix: str | None = None) -> int:
    """Put :func:`build_router`'s routes in front of MONAI Label's in the FastAPI ``app``; returns their number.

    Starlette takes the first route that matches a request's path and method, so the same paths now
    reach these functions. Safe to call once per app.
    """
    if getattr(app.state, "monai_ssl_routes", False):
        return 0
    router = APIRouter()
    router.include_router(build_router(), prefix=settings.MONAI_LABEL_API_STR if prefix is None else prefix)
    app.router.routes[:0] = router.routes
    app.state.monai_ssl_routes = True
    logger.info("monai_ssl: %d checked routes in front of MONAI Label's", len(router.routes))
    return len(router.routes)

