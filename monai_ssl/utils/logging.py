"""Console logging for bundle runs."""

from __future__ import annotations

import logging
import sys

from monai_ssl.utils.readable_errors import TracebackFreeFormatter

__all__ = ["configure_logging"]


def configure_logging(level: int | str = logging.INFO, name: str = "monai_ssl") -> logging.Logger:
    """Send ``name``'s log records (progress, warnings, where files were written) to stderr once.

    Idempotent: calling it again does not add a second handler.
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    if not any(getattr(h, "_monai_ssl", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        handler.setFormatter(TracebackFreeFormatter(plain))  # tracebacks only with MONAI_SSL_DEBUG=1
        handler._monai_ssl = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    return logger
