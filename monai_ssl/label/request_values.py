"""Strict parsing of the values in a MONAI Label request: JSON types as they are, never guessed.

``bool("false")`` is ``True`` in Python, so a request value is taken only when its JSON type is the
expected one: ``true``/``false`` for a switch, a number for a number. Anything else is a 422 that names
the key, the expected type and what came.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from monai_ssl.label.errors import Unprocessable

__all__ = ["check_keys", "device_name", "parse_params", "strict_bool", "strict_float", "strict_int"]


def _got(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def parse_params(text: str | None, what: str = "params") -> dict[str, Any]:
    """A form field that carries a JSON object (``params={"class": "CNV"}``); empty means ``{}``.

    Raises:
        Unprocessable: not JSON, or JSON that is not an object.
    """
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise Unprocessable(f"{what} is not valid JSON ({err.msg} at position {err.pos}); expected a JSON object.") from err
    if not isinstance(value, dict):
        raise Unprocessable(f"{what} must be a JSON object, got {type(value).__name__}.")
    return value


def check_keys(request: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse keys a request may not set.

    Raises:
        Unprocessable: naming the unknown keys and the allowed ones.
    """
    allowed = set(allowed)
    unknown = sorted(str(k) for k in request if k not in allowed)
    if unknown:
        raise Unprocessable(f"{what}: unknown key(s) {unknown[:5]}; allowed: {sorted(allowed)}.")


def strict_bool(request: Mapping[str, Any], key: str, default: bool) -> bool:
    """``request[key]`` when it is a JSON boolean (``true``/``false``), else ``default`` when absent.

    Raises:
        Unprocessable: any other type, including the strings ``"true"``/``"false"``.
    """
    value = request.get(key, default)
    if not isinstance(value, bool):
        raise Unprocessable(f"{key} must be a JSON boolean (true or false, without quotes), got {_got(value)}.")
    return value


def strict_int(request: Mapping[str, Any], key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """``request[key]`` when it is a JSON integer in ``[minimum, maximum]``.

    Raises:
        Unprocessable: a string, a boolean, a fraction, or a value out of range.
    """
    value = request.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unprocessable(f"{key} must be a JSON integer, got {_got(value)}.")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise Unprocessable(f"{key} must be {bound}, got {value}.")
    return value


def strict_float(request: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """``request[key]`` when it is a JSON number strictly between ``low`` and ``high``.

    Raises:
        Unprocessable: a string, a boolean, NaN, or a value out of range.
    """
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unprocessable(f"{key} must be a JSON number, got {_got(value)}.")
    if not low < value < high:
        raise Unprocessable(f"{key} must be between {low} and {high} (exclusive), got {value}.")
    return float(value)


def device_name(value: Any) -> str:
    """The torch device of a request's ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    MONAI Label's clients send a name from the trainer's ``device`` list (``"cpu"`` or a GPU's name),
    possibly as a one-element list; it is mapped as MONAI Label maps it. Without a GPU, ``cuda`` falls
    back to the CPU, as in MONAI Label.

    Raises:
        Unprocessable: a value that names no device of this machine.
    """
    from monailabel.utils.others.generic import device_list, name_to_device

    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is not None and not isinstance(value, str):
        raise Unprocessable(f"device must be a string such as \"cpu\" or \"cuda\", got {_got(value)}.")
    device = name_to_device(value)
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise Unprocessable(f"device must be one of {['cpu', 'cuda', *device_list()]}, got {_got(value)}.")
