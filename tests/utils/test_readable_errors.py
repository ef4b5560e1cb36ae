from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigComponent, ConfigExpression
from monai.transforms import Lambda, apply_transform
from torch._utils import ExceptionWrapper

from monai_ssl.utils import install_readable_errors, readable_error
from monai_ssl.utils.readable_errors import DEBUG_ENV

REPO = Path(__file__).resolve().parents[2]
BAD_FILE = "bad file /x/y: expected 3 columns, got 2"


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the tests look at whatever was raised
        return e
    raise AssertionError("expected an exception")


def _bad_file():
    raise ValueError(BAD_FILE)


def _wrapped_twice():
    try:
        try:
            _bad_file()
        except ValueError as e:
            raise RuntimeError("Failed to evaluate ConfigExpression: \n\"$load(@x)\"") from e
    except RuntimeError as e:
        raise RuntimeError("Failed to evaluate ConfigExpression: \n\"$@train#trainer.run()\"") from e


def test_skips_monai_wrappers_to_the_first_meaningful_error():
    assert readable_error(_raised(_wrapped_twice)) == f"ERROR: ValueError: {BAD_FILE}"


def test_follows_implicit_context_but_not_suppressed_context():
    def implicit():
        try:
            _bad_file()
        except ValueError:
            raise RuntimeError("Failed to instantiate component 'Dataset' with keywords: data")  # noqa: B904

    def suppressed():
        try:
            _bad_file()
        except ValueError:
            raise RuntimeError("Failed to evaluate ConfigExpression: \n\"$x\"") from None

    assert readable_error(_raised(implicit)) == f"ERROR: ValueError: {BAD_FILE}"
    assert readable_error(_raised(suppressed)) == 'ERROR: RuntimeError: Failed to evaluate ConfigExpression: \n"$x"'


def test_a_plain_error_is_shown_with_its_type():
    assert readable_error(KeyError("image")) == "ERROR: KeyError: 'image'"
    assert readable_error(RuntimeError("Failed to load weights")) == "ERROR: RuntimeError: Failed to load weights"


def test_names_the_innermost_config_key_from_monai_wrappers():
    inner = ConfigExpression("$bad()", id="train::datalist", globals={"bad": _bad_file})
    outer = ConfigExpression("$inner.evaluate()", id="run::0", globals={"inner": inner})
    error = _raised(outer.evaluate)
    assert str(error).startswith("Failed to evaluate ConfigExpression")  # MONAI's own wrapper, no id in it
    assert readable_error(error) == f"ERROR in config key 'train#datalist': ValueError: {BAD_FILE}"


def test_names_the_key_of_a_component_that_failed_to_instantiate():
    component = ConfigComponent({"_target_": "json.loads", "s": "{not json"}, id="train::dataset")
    error = _raised(component.instantiate)
    assert str(error).startswith("Failed to instantiate component 'json.loads'")
    message = readable_error(error)
    assert message.startswith("ERROR in config key 'train#dataset': JSONDecodeError: Expecting property name")


def _worker_reraise():
    """What torch's DataLoader raises in the main process when a MONAI transform failed in a worker."""
    try:
        apply_transform(Lambda(lambda _: _bad_file()), {"image": "a.npy"})
    except Exception:  # noqa: BLE001
        ExceptionWrapper(where="in DataLoader worker process 0").reraise()


def test_shows_the_worker_error_instead_of_the_dataloader_reraise():
    error = _raised(_worker_reraise)
    assert str(error).startswith("Caught RuntimeError in DataLoader worker process 0.\nOriginal Traceback")
    assert readable_error(error) == f"ERROR: ValueError: {BAD_FILE}"


@pytest.fixture
def hook(monkeypatch):
    """Install the hook over a recording stand-in for Python's default hook; return the calls it got."""
    calls = []
    monkeypatch.setattr(sys, "excepthook", lambda *args: calls.append(args))
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    install_readable_errors()
    return calls


def _call_hook(error: BaseException) -> None:
    sys.excepthook(type(error), error, error.__traceback__)


def test_hook_ends_with_one_error_line_and_a_hint(hook, capsys):
    _call_hook(_raised(_wrapped_twice))
    err = capsys.readouterr().err
    assert err.splitlines() == [f"(full traceback: set {DEBUG_ENV}=1)", f"ERROR: ValueError: {BAD_FILE}"]
    assert hook == []  # the default hook's traceback was not printed


def test_debug_switch_prints_the_full_traceback_then_the_error_line(hook, capsys, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    error = _raised(_wrapped_twice)
    _call_hook(error)
    assert hook == [(RuntimeError, error, error.__traceback__)]
    assert capsys.readouterr().err.splitlines() == [f"ERROR: ValueError: {BAD_FILE}"]


def test_interrupts_go_to_the_previous_hook_and_install_is_idempotent(hook, capsys):
    installed = sys.excepthook
    install_readable_errors()
    assert sys.excepthook is installed
    interrupt = KeyboardInterrupt()
    _call_hook(interrupt)
    assert hook == [(KeyboardInterrupt, interrupt, None)]
    assert capsys.readouterr().err == ""


def _tiny_bundle(tmp_path: Path) -> Path:
    config = {
        "imports": ["$import monai_ssl"],
        "resume": False,
        "train": {
            # a datalist expression that fails the way a data loader fails on a bad file
            "datalist": f"$(_ for _ in ()).throw(ValueError({BAD_FILE!r}))",
        },
        "initialize": [
            "$monai_ssl.utils.install_readable_errors()",
            "$monai_ssl.utils.require_flags(resume=@resume)",
        ],
        "run": ["$print('loading the data')", "$len(@train#datalist)"],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    return path


def _run_bundle(config: Path, *args: str, debug: bool = False) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if debug:
        env[DEBUG_ENV] = "1"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config), *args]
    done = subprocess.run(
        command, cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )
    return done.returncode, [line for line in done.stdout.splitlines() if line.strip()]


def test_bundle_run_ends_with_the_error_line(tmp_path):
    config = _tiny_bundle(tmp_path)
    code, lines = _run_bundle(config)
    assert code == 1
    assert lines[-1] == f"ERROR in config key 'train#datalist': ValueError: {BAD_FILE}"
    assert lines[-2] == f"(full traceback: set {DEBUG_ENV}=1)"
    assert "loading the data" in lines  # printed output is flushed before the error line
    assert not any("Traceback" in line for line in lines)

    debug_code, debug_lines = _run_bundle(config, debug=True)
    assert debug_code == 1
    assert debug_lines[-1] == lines[-1]
    assert any(line.startswith("Traceback (most recent call last)") for line in debug_lines)
    assert any("Failed to evaluate ConfigExpression" in line for line in debug_lines)
    assert len(lines) + 20 < len(debug_lines)


def test_bundle_run_rejects_lowercase_true_from_the_command_line(tmp_path):
    code, lines = _run_bundle(_tiny_bundle(tmp_path), "--resume", "true")
    assert code == 1
    assert lines[-1].startswith(
        "ERROR in config key 'initialize#1': ValueError: setting 'resume' must be True or False, got the text 'true'"
    )
    assert "--resume True or --resume False" in lines[-1]


def test_console_log_records_lose_their_traceback_but_keep_it_for_other_handlers(monkeypatch):
    import logging

    from monai_ssl.utils.readable_errors import TracebackFreeFormatter

    try:
        raise ValueError("bad file /x/y")
    except ValueError:
        record = logging.LogRecord("ignite", logging.ERROR, __file__, 1, "Exception: bad file /x/y", None,
                                   sys.exc_info())
    formatter = TracebackFreeFormatter(logging.Formatter("%(levelname)s %(message)s"))
    monkeypatch.delenv("MONAI_SSL_DEBUG", raising=False)
    assert formatter.format(record) == "ERROR Exception: bad file /x/y"
    assert record.exc_info is not None  # a log file or pytest's capture still gets the traceback
    assert "Traceback" in logging.Formatter().format(record)
    monkeypatch.setenv("MONAI_SSL_DEBUG", "1")
    assert "Traceback" in formatter.format(record)
