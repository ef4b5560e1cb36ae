"""One readable line for a failed bundle run instead of a 60-line chained traceback.

MONAI wraps every error raised while it evaluates a config expression or instantiates a component:
``RuntimeError: Failed to evaluate ConfigExpression: ...`` (``monai/bundle/config_item.py``) and
``RuntimeError: Failed to instantiate component '...' with keywords: ...`` (``monai/utils/module.py``);
a failing transform becomes ``RuntimeError: applying transform <...>`` (``monai/transforms/transform.py``)
and an error in a DataLoader worker comes back as the same exception type with the worker's whole
traceback as its message (``torch/_utils.py``). The message that names the bad file or setting sits
in the middle of that chain. :func:`install_readable_errors`, the first item of a bundle's
``initialize``, installs a ``sys.excepthook`` that prints that message last, with the config key it
came from; ``MONAI_SSL_DEBUG=1`` prints the full traceback as well.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from types import TracebackType
from typing import Callable, Optional

__all__ = ["DEBUG_ENV", "TracebackFreeFormatter", "hide_tracebacks_on_console", "install_readable_errors", "readable_error"]

DEBUG_ENV = "MONAI_SSL_DEBUG"

ExceptHook = Callable[[type, BaseException, Optional[TracebackType]], object]

# how MONAI and torch start the messages of the RuntimeErrors that only wrap the real error
_WRAPPER_PREFIXES = ("Failed to evaluate ", "Failed to instantiate component ", "applying transform ")
_WRAPPER_TEXTS = tuple(f"RuntimeError: {prefix}" for prefix in _WRAPPER_PREFIXES)
_WORKER_RERAISE = re.compile(r"^Caught \w+ in (DataLoader worker process \d+|pin memory thread[^\n]*)\.\nOriginal ")
_CHAIN_SEPARATORS = re.compile(
    r"\n\s*(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*\n"
)
_HOOK_MARK = "_monai_ssl_readable_errors"


def _is_wrapper(exc: BaseException) -> bool:
    return type(exc) is RuntimeError and str(exc).startswith(_WRAPPER_PREFIXES)


def _is_wrapper_text(text: str) -> bool:
    return text.startswith(_WRAPPER_TEXTS)


def _inner(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _config_key(wrapper: BaseException) -> str | None:
    """The id of the deepest MONAI config item in ``wrapper``'s own traceback, written with ``#``."""
    config_item = getattr(sys.modules.get("monai.bundle.config_item"), "ConfigItem", None)
    if config_item is None:  # MONAI's bundle parser was never used: no config item to name
        return None
    key = None
    tb = wrapper.__traceback__
    while tb is not None:
        item = tb.tb_frame.f_locals.get("self")
        if isinstance(item, config_item) and isinstance(item.id, str) and item.id:
            key = item.id
        tb = tb.tb_next
    return key.replace("::", "#") if key else None


def _exception_texts(formatted: str) -> list[str]:
    """The ``Type: message`` parts of a formatted (possibly chained) traceback, innermost first."""
    texts = []
    for block in _CHAIN_SEPARATORS.split(formatted):
        if block.startswith(("The above exception", "During handling")):
            continue
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("Traceback (most recent call last):"):
            lines = lines[1:]
            while lines and (not lines[0] or lines[0][0].isspace()):
                lines = lines[1:]  # frames, source lines and carets are indented
        text = "\n".join(lines).strip()
        if text:
            texts.append(text)
    return texts


def _describe(exc: BaseException) -> str:
    """``Type: message``; for a DataLoader worker's re-raise, the worker's own meaningful error."""
    message = str(exc)
    match = _WORKER_RERAISE.match(message)
    texts = _exception_texts(message[match.end() :]) if match else []
    for text in reversed(texts):  # outermost first, as for the exception chain itself
        if not _is_wrapper_text(text):
            return text
    if texts:
        return texts[-1]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def readable_error(exc: BaseException) -> str:
    """One message for ``exc``: the first error in its chain that is not a MONAI wrapper, and its config key.

    Walks ``__cause__``/``__context__`` from the outermost exception, skips MONAI's
    ``Failed to evaluate``/``Failed to instantiate``/``applying transform`` RuntimeErrors, and names
    the config key (``train#datalist``) of the innermost wrapper whose traceback shows the config item.

    Returns:
        ``"ERROR in config key 'train#datalist': FileNotFoundError: ..."``, or ``"ERROR: ..."`` without a key.
    """
    meaningful, key, seen = exc, None, set()
    while _is_wrapper(meaningful) and id(meaningful) not in seen:
        seen.add(id(meaningful))
        key = _config_key(meaningful) or key
        inner = _inner(meaningful)
        if inner is None:
            break
        meaningful = inner
    where = f" in config key '{key}'" if key else ""
    return f"ERROR{where}: {_describe(meaningful)}"


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _make_hook(previous: ExceptHook) -> ExceptHook:
    def hook(exc_type: type, exc: BaseException, tb: TracebackType | None) -> None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: Python's own handling
            previous(exc_type, exc, tb)
            return
        try:
            message = readable_error(exc)
        except Exception:  # never hide the error behind a bug of this hook
            previous(exc_type, exc, tb)
            return
        for stream in (sys.stdout, sys.stderr):  # log records printed to stdout come first
            try:
                stream.flush()
            except Exception:
                pass
        if _debugging():
            previous(exc_type, exc, tb)
            sys.stderr.flush()
        else:
            sys.stderr.write(f"(full traceback: set {DEBUG_ENV}=1)\n")
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    setattr(hook, _HOOK_MARK, True)
    return hook


class TracebackFreeFormatter(logging.Formatter):
    """Format a log record like ``inner`` does, without its traceback unless ``MONAI_SSL_DEBUG=1``.

    Ignite's engines and MONAI's ``StatsHandler`` log every exception of a run with its traceback
    (``logger.exception``), before the error reaches the exception hook; on the console the readable
    ``ERROR`` line would follow two more copies of the traceback. Only the console handlers get this
    formatter; the record itself is left as it is for any other handler (a log file, pytest's capture).
    """

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        if _debugging() or not (record.exc_info or record.exc_text):
            return self.inner.format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def _is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return type(handler) is logging.StreamHandler and stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def hide_tracebacks_on_console(loggers: tuple[str | None, ...] = (None, "monai_ssl")) -> None:
    """Give the console handlers of ``loggers`` (root and ``monai_ssl``) a :class:`TracebackFreeFormatter`, once."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if _is_console(handler) and not isinstance(handler.formatter, TracebackFreeFormatter):
                handler.setFormatter(TracebackFreeFormatter(handler.formatter))


def install_readable_errors() -> None:
    """Make an uncaught error end the output with one ``ERROR ...`` line (call it first in ``initialize``).

    Idempotent. The exit status stays 1; ``KeyboardInterrupt`` and ``SystemExit`` go to the previous
    hook, and with the environment variable ``MONAI_SSL_DEBUG=1`` the previous hook prints the full
    traceback before the ``ERROR`` line. Log records printed on the console by the root and
    ``monai_ssl`` loggers lose their tracebacks too (:class:`TracebackFreeFormatter`), unless debugging.
    """
    hide_tracebacks_on_console()
    if getattr(sys.excepthook, _HOOK_MARK, False):
        return
    sys.excepthook = _make_hook(sys.excepthook)
