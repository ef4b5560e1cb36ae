"""Checks of a bundle's settings before they are used: on/off flags, and named choices.

MONAI's bundle command line is read by Fire: ``--resume True`` and ``--resume False`` give booleans,
but ``--resume true`` and ``--resume false`` give the text ``'true'`` and ``'false'``, and the text
``'false'`` counts as true wherever the bundle tests the setting. :func:`require_flags`, called in a
bundle's ``initialize``, stops such a run with a message that says what to write.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TypeVar

import numpy as np

__all__ = ["choose", "require_flags"]

T = TypeVar("T")


def _is_flag(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, numbers.Integral) and value in (0, 1)


def require_flags(**flags: object) -> None:
    """Check that every keyword value is a boolean (``True``/``False``, or the integers 0 and 1).

    Example, in a bundle's ``initialize``:
    ``"$monai_ssl.utils.require_flags(resume=@resume, amp=@amp)"``.

    Args:
        flags: the bundle's on/off settings, by config key.

    Raises:
        ValueError: a value is text or any other non-boolean; the message names the key, the value
            received and what to write instead.
    """
    for key, value in flags.items():
        if _is_flag(value):
            continue
        received = f"the text {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        raise ValueError(
            f"setting '{key}' must be True or False, got {received}: on the command line write "
            f"--{key} True or --{key} False (Fire reads lowercase true/false as text, and the text 'false' "
            f"counts as true); in a config file write true or false without quotes"
        )


def choose(key: str, value: object, options: Mapping[str, T]) -> T:
    """``options[value]``: a setting that picks one of several named choices.

    Example, in a bundle config: ``"network_def": "$monai_ssl.utils.choose('architecture', @architecture,
    @network_defs)"``.

    Raises:
        ValueError: ``value`` is not one of the options; the message names ``key`` and the choices.
    """
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"setting '{key}' must be one of {sorted(options)}, got {value!r}")
    return options[value]


def disabled_unless(flag: bool) -> bool:
    """``_disabled_`` of a component that runs only when ``flag`` is true (a JSON boolean setting).

    Raises:
        ValueError: ``flag`` is not a boolean.
    """
    if not isinstance(flag, bool):
        raise ValueError(f"expected true or false, got {flag!r}")
    return not flag
