"""Which image ids and label tags the MONAI Label server accepts: names that stay names.

An id or a tag comes from a request (``PUT /datastore/image?image=...``, ``?tag=...``) or from a file
name in the studies folder. It becomes part of a file path (``<studies>/<id>.png``,
``<studies>/labels/<tag>/``) and of a bundle's training datalist, so it must never be able to leave
its folder (``/``, ``\\``, ``..``) or read as MONAI's config syntax (a leading ``$`` runs code, ``@``
and ``%`` refer to other config entries). The accepted set is what real datastores use:
``ISIC_0000000``, ``1130``, ``spleen_10``, DICOM UIDs such as ``1.2.840.113619.2.55.3``.
"""

from __future__ import annotations

import re

__all__ = [
    "FIXED_TAGS",
    "MAX_NAME_LENGTH",
    "PRIVATE_DIR",
    "UnsafeName",
    "check_image_id",
    "check_label_tag",
    "name_problem",
    "tag_problem",
]

MAX_NAME_LENGTH = 128
FIXED_TAGS = ("final", "original")
PRIVATE_DIR = ".monai_ssl"
"""The app's own folder inside the studies folder (staged uploads, replaced images, decode checks); its
leading dot keeps it out of the safe names, so it is never an image or a tag."""
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, without '..'"


class UnsafeName(ValueError):
    """An id or tag outside the safe set; the message says which rule it breaks (without echoing it)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe id or tag, or ``None`` when it is.

    The answer never repeats the name itself: a hostile value is not echoed back to the client.
    """
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if name[0] in "$@%":
        return f"starts with {name[0]!r} (MONAI's config syntax); allowed: {_RULE}"
    if "/" in name or "\\" in name:
        return f"contains a path separator; allowed: {_RULE}"
    if ".." in name:
        return f"contains '..'; allowed: {_RULE}"
    if not _SAFE.fullmatch(name):
        return f"has characters outside the allowed set ({_RULE})"
    return None


def tag_problem(tag: object) -> str | None:
    """Why ``tag`` is not one of :data:`FIXED_TAGS` or a safe name, or ``None``."""
    return None if tag in FIXED_TAGS else name_problem(tag)


def check_image_id(image_id: object) -> str:
    """``image_id`` when it is a safe datastore id.

    Raises:
        UnsafeName: it is not (the message says why).
    """
    problem = name_problem(image_id)
    if problem:
        raise UnsafeName(f"image id {problem}.")
    return str(image_id)


def check_label_tag(tag: object) -> str:
    """``tag`` when it is one of :data:`FIXED_TAGS` or a safe name.

    Raises:
        UnsafeName: it is not (the message says why).
    """
    problem = tag_problem(tag)
    if problem:
        raise UnsafeName(f"label tag {problem}.")
    return str(tag)
