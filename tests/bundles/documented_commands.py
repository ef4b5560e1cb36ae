"""The commands of a bundle guide, as a user copies them: for tests that run them exactly as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from bundle_helpers import REPO

GUIDES = REPO / "docs"


def documented_command(guide: str, start: str) -> list[str]:
    """The arguments of the one command of ``docs/<guide>`` that begins with ``start``.

    Continuation lines (a trailing backslash) are joined and ``$B`` is replaced by the guide's
    ``B=...`` assignment, as a shell would.

    Raises:
        AssertionError: the guide has no such command, or more than one.
    """
    text = (GUIDES / guide).read_text(encoding="utf-8").replace("\\\n", " ")
    assignment = re.search(r"^B=(\S+)$", text, flags=re.MULTILINE)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, f"docs/{guide}: expected one command starting with {start!r}, found {lines}"
    command = lines[0].split(" #")[0]
    if assignment is not None:
        command = command.replace("$B", assignment.group(1))
    return shlex.split(command)


def run_in_repo_layout(command: list[str], cwd: Path, bundle: str, models: Path) -> subprocess.CompletedProcess:
    """Run a documented ``python -m ...`` command in ``cwd`` laid out like the repository root.

    ``cwd/bundles/<bundle>/configs`` links to the bundle's configs and ``cwd/bundles/<bundle>/models`` to
    ``models`` (a test run's model folder), so the command's relative paths resolve as in a checkout
    and whatever it writes stays inside ``cwd``.
    """
    assert command[0] == "python", command
    root = cwd / "bundles" / bundle
    root.mkdir(parents=True)
    (root / "configs").symlink_to(REPO / "bundles" / bundle / "configs", target_is_directory=True)
    (root / "models").symlink_to(models, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
