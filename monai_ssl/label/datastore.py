"""MONAI Label's local datastore with the checks a server facing a network needs.

:class:`GuardedDatastore` is MONAI Label 0.8.5's ``LocalDatastore`` plus:

- **safe names only**: an image id or label tag outside :mod:`monai_ssl.label.names` (from a request,
  a file dropped into the studies folder, or an old ``datastore_v2.json``) never becomes an entry.
  Such files stay on disk untouched and are listed under ``skipped`` in the datastore's status (and
  so in ``/info/``) with the reason;
- **nothing written outside the studies folder**: every write goes to a path built from a checked id
  and tag, through a staging file in ``<studies>/.monai_ssl/`` and one rename;
- **no annotation lost**: an upload under an existing id is refused (409) unless the client asks to
  replace it, and replacing an image moves the old image and all its labels to
  ``<studies>/.monai_ssl/replaced/<id>/<time>/`` in the same locked step, so an old mask is never paired
  with a new image;
- **4xx answers**: unknown ids and tags give 404 (:mod:`monai_ssl.label.errors`) instead of a 500.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore

from monai_ssl.label.errors import Conflict, NotFound, Unprocessable
from monai_ssl.label.names import PRIVATE_DIR, UnsafeName, check_image_id, check_label_tag, name_problem, tag_problem

__all__ = ["GuardedDatastore", "PRIVATE_DIR"]

logger = logging.getLogger(__name__)


class GuardedDatastore(LocalDatastore):
    """``LocalDatastore`` that accepts safe names only and never loses a label (see the module docstring).

    Args:
        datastore_path: the studies folder.
        extensions: file patterns of images (and labels), as for ``LocalDatastore``.
        auto_reload: watch the folder for files added or removed by hand.
        read_only: do not reconcile the folder with ``datastore_v2.json`` at start-up.
    """

    def __init__(self, datastore_path: str, extensions: Any = ("*.nii.gz", "*.nii"), auto_reload: bool = False,
                 read_only: bool = False) -> None:
        self.skipped: dict[str, str] = {}
        self._warned: set[tuple[str, str]] = set()
        self._guard = threading.RLock()
        super().__init__(datastore_path, extensions=extensions, auto_reload=auto_reload, read_only=read_only)

    # ---------------------------------------------------------------- names found on disk or in the json
    def _skip(self, name: str, reason: str) -> None:
        if (name, reason) not in self._warned:
            self._warned.add((name, reason))
            logger.warning("datastore: skipped %r: %s", name, reason)
        self.skipped[name] = reason

    def _reconcile_datastore(self) -> None:
        with self._guard:
            self.skipped = {k: v for k, v in self.skipped.items() if k.startswith("datastore_v2.json")}
            super()._reconcile_datastore()

    def _list_files(self, path: str, patterns: Any) -> dict[str, str]:
        files = super()._list_files(path, patterns)
        rel = os.path.relpath(path, self._datastore_path)
        kept = {}
        for name, file in files.items():
            problem = name_problem(self._to_id(name)[0])
            if problem:
                self._skip(os.path.normpath(os.path.join(rel, name)), f"its id {problem}; rename the file to use it")
            else:
                kept[name] = file
        return kept

    def _add_non_existing_labels(self, tag: str) -> int:
        problem = tag_problem(tag)
        if problem:
            self._skip(os.path.join(self._datastore.labels_dir, tag), f"label tag {problem}; its labels are not used")
            return 0
        return super()._add_non_existing_labels(tag)

    def _init_from_datastore_file(self, throw_exception: bool = False) -> None:
        super()._init_from_datastore_file(throw_exception=throw_exception)
        for key, default in (("images_dir", "."), ("labels_dir", "labels")):  # folders are this app's, not the json's
            if getattr(self._datastore, key) != default:
                self._skip(f"datastore_v2.json: {key}", f"{getattr(self._datastore, key)!r} ignored; {default!r} is used")
                setattr(self._datastore, key, default)
        objects = self._datastore.objects
        for image_id in [i for i in objects if name_problem(i)]:
            self._skip(f"datastore_v2.json: {image_id}", f"image id {name_problem(image_id)}; entry ignored")
            del objects[image_id]
        for image_id, obj in objects.items():
            for tag in [t for t in obj.labels if tag_problem(t)]:
                self._skip(f"datastore_v2.json: {image_id} [{tag}]", f"label tag {tag_problem(tag)}; entry ignored")
                del obj.labels[tag]

    def status(self) -> dict[str, Any]:
        """MONAI Label's counts plus ``skipped``: file -> why it is not in the datastore."""
        status = super().status()
        status["skipped"] = dict(sorted(self.skipped.items()))
        return status

    # ---------------------------------------------------------------- checks of request values
    def image_id(self, image_id: Any, must_exist: bool = True) -> str:
        """``image_id`` checked: a safe name (422) and, with ``must_exist``, an image of the datastore (404)."""
        try:
            image_id = check_image_id(image_id)
        except UnsafeName as err:
            if must_exist:
                raise NotFound(f"unknown image: {err} Use an id listed by GET /datastore/.") from err
            raise Unprocessable(str(err)) from err
        if must_exist and image_id not in self._datastore.objects:
            raise NotFound(f"unknown image {image_id!r}: not in the datastore.")
        return image_id

    @staticmethod
    def label_tag(tag: Any) -> str:
        """``tag`` checked (422 when unsafe)."""
        try:
            return check_label_tag(tag or "final")
        except UnsafeName as err:
            raise Unprocessable(str(err)) from err

    def image_extension(self, filename: str | None) -> str:
        """The datastore extension that ``filename`` ends with (422 when none)."""
        name = (filename or "").lower()
        extensions = sorted((e.replace("*", "") for e in self._extensions), key=len, reverse=True)
        for ext in extensions:
            if name.endswith(ext.lower()):
                return ext
        raise Unprocessable(f"the uploaded file's name must end with one of {sorted(set(extensions))}.")

    # ---------------------------------------------------------------- writes
    @contextmanager
    def staging_file(self, extension: str) -> Iterator[Path]:
        """A fresh path in ``<studies>/.monai_ssl/uploads/`` for an upload; removed on exit unless moved in."""
        folder = Path(self._datastore_path) / PRIVATE_DIR / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}{extension}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _files_of(self, image_id: str) -> tuple[list[Path], list[tuple[str, Path]]]:
        """The image files and ``(tag, label file)`` pairs on disk that belong to ``image_id``, known or not."""
        images = [Path(self._datastore.image_path()) / name
                  for name in super()._list_files(self._datastore.image_path(), self._extensions)
                  if self._to_id(name)[0] == image_id]
        labels = []
        labels_dir = Path(self._datastore.label_path(None))
        for tag_dir in sorted(p for p in labels_dir.iterdir() if p.is_dir()) if labels_dir.is_dir() else []:
            labels += [(tag_dir.name, tag_dir / name) for name in super()._list_files(str(tag_dir), self._extensions)
                       if self._to_id(name)[0] == image_id]
        return images, labels

    def _archive(self, image_id: str) -> Path | None:
        """Move the image files and labels of ``image_id`` found on disk to ``.monai_ssl/replaced/<id>/<time>/``.

        On disk, not only those the datastore lists: a file put there by hand since the last refresh is
        archived too, so no earlier mask is ever paired with the new image. The caller holds the lock.
        """
        images, labels = self._files_of(image_id)
        if not images and not labels:
            return None
        folder = Path(self._datastore_path) / PRIVATE_DIR / "replaced" / image_id
        folder = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        for tag, source in labels:
            (folder / "labels" / tag).mkdir(parents=True, exist_ok=True)
            os.replace(source, folder / "labels" / tag / source.name)
        for source in images:
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(source, folder / source.name)
        return folder

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any] | None = None,
                  replace: bool = False) -> str:
        """Add (move in) the file ``image_filename`` as ``image_id``.

        Args:
            image_id: the new id (checked); empty takes the file's name.
            image_filename: the file; moved when it is a staging file of this datastore, copied otherwise.
            image_info: stored with the image.
            replace: replace an existing image; its image and labels are archived in the same step.

        Raises:
            Unprocessable: an unsafe id. Conflict: the id exists (in the datastore or as a file) and
            ``replace`` is false.
        """
        name_id, ext = self._to_id(os.path.basename(image_filename))
        image_id = self.image_id(image_id or name_id, must_exist=False)
        dest = Path(self._datastore.image_path()) / self._filename(image_id, ext)
        staged = Path(image_filename).resolve().parent == (Path(self._datastore_path) / PRIVATE_DIR / "uploads").resolve()
        with self._guard, FileLock(self._lock_file):
            images, _ = self._files_of(image_id)
            if (image_id in self._datastore.objects or images) and not replace:
                raise Conflict(f"image {image_id!r} exists; upload with replace=true to replace it (its labels are archived).")
            archive = self._archive(image_id)  # with replace, or labels left on disk without their image
            if archive:
                logger.info("datastore: the earlier files of image %s (image and labels) are in %s", image_id, archive)
            if staged:
                os.replace(image_filename, dest)
            else:
                tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copyfile(image_filename, tmp)
                os.replace(tmp, dest)
            info = dict(image_info or {})
            info.update({"ts": int(time.time()), "name": dest.name})
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(info=info, ext=ext))
            self._update_datastore_file(lock=False)
        return image_id

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Save the file ``label_filename`` as the ``label_tag`` label of ``image_id`` (atomically).

        A label of the same tag with another file extension is removed, so one image never has two.

        Raises:
            NotFound: an unknown image. Unprocessable: an unsafe tag.
        """
        image_id = self.image_id(image_id)
        label_tag = self.label_tag(label_tag)
        _, ext = self._to_id(os.path.basename(label_filename))
        folder = Path(self._datastore.label_path(label_tag))
        dest = folder / self._filename(image_id, ext)
        with self._guard, FileLock(self._lock_file):
            obj = self._datastore.objects.get(image_id)
            if obj is None:
                raise NotFound(f"unknown image {image_id!r}: not in the datastore.")
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
            shutil.copyfile(label_filename, tmp)
            os.replace(tmp, dest)
            old = obj.labels.get(label_tag)
            if old is not None and old.ext != ext:
                (folder / self._filename(image_id, old.ext)).unlink(missing_ok=True)
            info = dict(label_info or {})
            info.update({"ts": int(time.time()), "name": dest.name})
            obj.labels[label_tag] = DataModel(info=info, ext=ext)
            self._update_datastore_file(lock=False)
        logger.info("datastore: saved the %s label of %s", label_tag, image_id)
        return image_id

    def remove_image(self, image_id: str) -> None:  # noqa: D102 - 404 for an unknown id
        with self._guard:
            super().remove_image(self.image_id(image_id))

    def remove_label(self, label_id: str, label_tag: str) -> None:  # noqa: D102 - 404 for an unknown label
        image_id, tag = self.image_id(label_id), self.label_tag(label_tag)
        if not self._datastore.label(image_id, tag):
            raise NotFound(f"image {image_id!r} has no {tag!r} label.")
        with self._guard:
            super().remove_label(image_id, tag)

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:  # noqa: D102
        with self._guard:
            super().update_image_info(self.image_id(image_id), info)

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:  # noqa: D102
        image_id, tag = self.image_id(label_id), self.label_tag(label_tag)
        if not self._datastore.label(image_id, tag):
            raise NotFound(f"image {image_id!r} has no {tag!r} label.")
        with self._guard:
            super().update_label_info(image_id, tag, info)
