"""Strict parsing of MONAI Label request values (:mod:`monai_ssl.label.request_values`).

A value is taken only when its JSON type is the expected one; anything else is a 422
(:class:`~monai_ssl.label.errors.Unprocessable`) whose message names the key and the expected type.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")

import torch  # noqa: E402

from monai_ssl.label.errors import Unprocessable  # noqa: E402
from monai_ssl.label.request_values import (  # noqa: E402
    check_keys,
    device_name,
    parse_params,
    strict_bool,
    strict_float,
    strict_int,
)


def _refused(call, *args, **kwargs) -> str:
    """The message of the 422 that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(Unprocessable) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 422
    return str(caught.value.detail)


# ---------------------------------------------------------------- strict_bool
def test_string_false_is_refused_not_read_as_true():
    message = _refused(strict_bool, {"pretrained": "false"}, "pretrained", True)
    assert "pretrained" in message
    assert "JSON boolean" in message
    assert '"false"' in message


@pytest.mark.parametrize("value", ["true", 0, 1, None, [True], {"a": True}])
def test_strict_bool_refuses_other_types(value):
    message = _refused(strict_bool, {"flag": value}, "flag", False)
    assert message.startswith("flag must be a JSON boolean")


@pytest.mark.parametrize("value", [True, False])
def test_strict_bool_takes_json_booleans(value):
    assert strict_bool({"pretrained": value}, "pretrained", not value) is value


@pytest.mark.parametrize("default", [True, False])
def test_strict_bool_absent_key_gives_the_default(default):
    assert strict_bool({"other": 1}, "pretrained", default) is default


# ---------------------------------------------------------------- strict_int
@pytest.mark.parametrize("value", ["1", True, False, 1.5, None, float("nan"), float("inf"), [1]])
def test_strict_int_refuses_non_integers(value):
    message = _refused(strict_int, {"epochs": value}, "epochs", 1)
    assert message.startswith("epochs must be a JSON integer")


@pytest.mark.parametrize(("value", "expected"), [(2, 2), (2.0, 2), (0, 0), (10, 10)])
def test_strict_int_accepts_integers_and_integral_floats(value, expected):
    result = strict_int({"epochs": value}, "epochs", 1, minimum=0, maximum=10)
    assert result == expected
    assert type(result) is int


def test_strict_int_absent_key_gives_the_default():
    assert strict_int({}, "epochs", 7) == 7


def test_strict_int_refuses_values_out_of_range():
    below = _refused(strict_int, {"epochs": 0}, "epochs", 1, minimum=1, maximum=5)
    assert below == "epochs must be between 1 and 5, got 0."
    above = _refused(strict_int, {"epochs": 6}, "epochs", 1, minimum=1, maximum=5)
    assert above == "epochs must be between 1 and 5, got 6."
    negative = _refused(strict_int, {"epochs": -1}, "epochs", 1)
    assert negative == "epochs must be at least 0, got -1."
    assert strict_int({"epochs": 10**9}, "epochs", 1) == 10**9  # no maximum: any value at least the minimum


def test_strict_int_truncates_a_long_value_in_the_message():
    message = _refused(strict_int, {"epochs": "9" * 100}, "epochs", 1)
    assert "9" * 100 not in message
    assert "..." in message


# ---------------------------------------------------------------- strict_float
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "0.5", True, None, [0.5]])
def test_strict_float_refuses_non_numbers(value):
    message = _refused(strict_float, {"lr": value}, "lr", 0.1, 0.0, 1.0)
    assert message.startswith("lr must be a JSON number")


@pytest.mark.parametrize("value", [0.0, 1.0, -0.5, 1.5])
def test_strict_float_bounds_are_exclusive(value):
    message = _refused(strict_float, {"lr": value}, "lr", 0.1, 0.0, 1.0)
    assert "between 0.0 and 1.0 (exclusive)" in message


@pytest.mark.parametrize(("value", "expected"), [(0.25, 0.25), (1e-9, 1e-9)])
def test_strict_float_accepts_numbers_inside(value, expected):
    assert strict_float({"lr": value}, "lr", 0.1, 0.0, 1.0) == expected


def test_strict_float_takes_an_int_as_a_float():
    result = strict_float({"ratio": 2}, "ratio", 1.0, 0.0, 10.0)
    assert result == 2.0
    assert type(result) is float


def test_strict_float_absent_key_gives_the_default():
    assert math.isclose(strict_float({}, "lr", 0.1, 0.0, 1.0), 0.1)


# ---------------------------------------------------------------- parse_params
@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_params_are_an_empty_dict(text):
    assert parse_params(text) == {}


def test_params_object_is_parsed():
    assert parse_params('{"class": "CNV", "n": 2, "flag": false}') == {"class": "CNV", "n": 2, "flag": False}


@pytest.mark.parametrize("text", ["{not json", "{'single': 'quotes'}", '{"a": 1', "true false"])
def test_malformed_params_are_refused(text):
    message = _refused(parse_params, text)
    assert message.startswith("params is not valid JSON")
    assert "expected a JSON object" in message


@pytest.mark.parametrize(("text", "type_name"), [("[1, 2]", "list"), ('"text"', "str"), ("3", "int"), ("null", "NoneType")])
def test_params_that_are_not_an_object_are_refused(text, type_name):
    message = _refused(parse_params, text, "config")
    assert message == f"config must be a JSON object, got {type_name}."


# ---------------------------------------------------------------- check_keys
def test_check_keys_accepts_allowed_keys():
    assert check_keys({"epochs": 1, "lr": 0.1}, ["epochs", "lr", "device"], "train") is None
    assert check_keys({}, [], "train") is None


def test_check_keys_names_the_unknown_keys_and_the_allowed_ones():
    message = _refused(check_keys, {"epochs": 1, "zeta": 1, "alpha": 2}, ("epochs", "lr"), "train request")
    assert message.startswith("train request: unknown key(s) ['alpha', 'zeta']")
    assert "allowed: ['epochs', 'lr']" in message


# ---------------------------------------------------------------- device_name
def test_cpu_device():
    assert device_name("cpu") == "cpu"
    assert device_name(["cpu"]) == "cpu"


def test_default_device_is_the_gpu_when_there_is_one():
    assert device_name(None) == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback applies to machines without CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", ["cuda"]])
def test_cuda_falls_back_to_the_cpu_without_a_gpu(value):
    assert device_name(value) == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_is_kept_with_a_gpu():
    assert device_name("cuda") == "cuda"


@pytest.mark.parametrize("value", ["$x", "tpu", "../cpu"])
def test_unknown_device_names_are_refused(value):
    message = _refused(device_name, value)
    assert message.startswith("device must be one of")


@pytest.mark.parametrize("value", [5, 1.0, True, {"name": "cpu"}, ["cpu", "cuda"]])
def test_non_string_devices_are_refused(value):
    message = _refused(device_name, value)
    assert message.startswith("device must be a string")
