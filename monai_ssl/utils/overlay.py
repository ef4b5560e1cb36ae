"""Bundle overlays that say which base config they need when they are run alone.

A bundle overlay (``pseudolabel.json``, ``linear_probe.json``, ...) changes a few ids of a base
config and is listed after it: ``--config_file "['finetune.json','pseudolabel.json']"``. Run
alone, MONAI fails deep inside the reference resolver (``KeyError: 'query key: train'``). The
base config's ``initialize`` calls :func:`declare_base` and the overlay's first ``run`` expression
calls :func:`require_base`, which raises a clear error when the base config was not loaded. The
base's own ``run`` starts with :func:`withdraw_base`, so a base run alone leaves no declaration
behind for a later overlay run alone in the same process.
"""

from __future__ import annotations

__all__ = ["declare_base", "require_base", "withdraw_base"]

_declared: set[str] = set()


def declare_base(name: str) -> None:
    """Record that the base config ``name`` was loaded (call it from the base's ``initialize``)."""
    _declared.add(name)


def withdraw_base(name: str) -> None:
    """Take back the declaration of ``name`` (call it first in the base's own ``run``)."""
    _declared.discard(name)


def require_base(overlay: str, base: str, bundle_dir: str = "") -> None:
    """Check that ``base`` was loaded with ``overlay``; each declaration serves one run.

    Raises:
        RuntimeError: the overlay was run without its base config; the message gives the command.
    """
    if base in _declared:
        _declared.discard(base)
        return
    configs = f"{bundle_dir.rstrip('/')}/configs/" if bundle_dir else ""
    raise RuntimeError(
        f"{overlay} is an overlay of {base}, not a config of its own: list the base config first, "
        f"--config_file \"['{configs}{base}','{configs}{overlay}']\""
    )
