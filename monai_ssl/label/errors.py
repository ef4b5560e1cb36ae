"""The client errors of the MONAI Label server, as HTTP answers with one clear line.

They are FastAPI ``HTTPException`` s, so wherever one is raised (in a route of
:mod:`monai_ssl.label.routes`, in the app, or in :class:`~monai_ssl.label.datastore.GuardedDatastore`
under one of MONAI Label's own routes) the client gets the status code and the message, and the
server goes on serving. Messages never echo an unsafe id or a path from the request.
"""

from __future__ import annotations

from fastapi import HTTPException

__all__ = ["Conflict", "NotFound", "RequestError", "TooLarge", "Unprocessable"]


class RequestError(HTTPException):
    """A request the server refuses; ``status`` is its HTTP status code."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=self.status, detail=detail)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


class NotFound(RequestError):
    """404: no such image, label, model, strategy or scoring method."""

    status = 404


class Conflict(RequestError):
    """409: the image exists (upload with ``replace=true`` to replace it and archive its labels)."""

    status = 409


class TooLarge(RequestError):
    """413: the upload or image is above the server's size limit."""

    status = 413


class Unprocessable(RequestError):
    """422: a malformed value, an unsafe id or tag, an unreadable file, a label that does not fit its image."""

    status = 422
