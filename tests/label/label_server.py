"""Start and stop a real MONAI Label server of ``apps/monai_ssl`` on 127.0.0.1 (the documented command)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bundle_helpers import REPO

APP = REPO / "apps" / "monai_ssl"
START_TIMEOUT_S = 120
TRAIN_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def label_server(root: Path, studies: Path, bundles: Path, conf: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[str]:
    """``monailabel start_server --app apps/monai_ssl --studies <studies> --conf models all ...`` on a free
    port; yields its URL once ``/info/`` answers (within START_TIMEOUT_S); the server log is ``root/server.log``."""
    import requests

    port = free_port()
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "MONAI_LABEL_SESSION_PATH": str(root / "sessions"), **(env or {})}
    options = ["--conf", "models", "all", "--conf", "bundles", str(bundles)]
    for key, value in (conf or {}).items():
        options += ["--conf", key, value]
    command = [shutil.which("monailabel", path=full_env["PATH"]), "start_server", "--app", str(APP), "--studies",
               str(studies), *options, "--host", "127.0.0.1", "--port", str(port)]
    log_path = root / "server.log"
    log = open(log_path, "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}"
            try:
                if requests.get(f"{url}/info/", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"server not up in {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def wait_for_training(url: str, *wanted: str) -> dict:
    """The training status once it is one of ``wanted`` (or finished), within TRAIN_TIMEOUT_S."""
    import requests

    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = requests.get(f"{url}/train/", timeout=10).json()
        if status.get("status") in (*wanted, "DONE", "ERROR"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"training status not in {wanted} within {TRAIN_TIMEOUT_S} s")
