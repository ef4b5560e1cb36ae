"""Run a MONAI bundle config in this process, as ``python -m monai.bundle run`` does, with overrides given as data."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from monai.bundle import ConfigWorkflow

__all__ = ["run_config_workflow"]

logger = logging.getLogger("monai_ssl")


def run_config_workflow(
    config_files: str | os.PathLike | Sequence[str | os.PathLike], overrides: Mapping[str, Any]
) -> ConfigWorkflow:
    """Build a :class:`monai.bundle.ConfigWorkflow` of ``config_files`` with ``overrides``, run it, return it finished.

    The steps of ``python -m monai.bundle run``: the merged configs, then ``parser.update(overrides)``
    (config ids such as ``"train#datalist"`` as keys; a value of ``None`` sets ``None``, unlike the
    command line, which drops it), ``initialize()``, ``run()`` and ``finalize()``. ``finalize`` runs even
    when ``run`` fails; an error of ``finalize`` after a failed run is logged, and the run's own error
    is raised. The parsed parts of the finished workflow (``workflow.parser.get_parsed_content(id)``)
    stay readable: its trainer, evaluator and their states.

    Args:
        config_files: one config file or several, merged in order.
        overrides: config id -> value (plain values are data; a string that starts with ``$`` or ``@`` is
            config syntax).

    Returns:
        The finished workflow.
    """
    single = isinstance(config_files, (str, os.PathLike))
    files = [os.fspath(config_files)] if single else [os.fspath(f) for f in config_files]
    workflow = ConfigWorkflow(config_file=files, workflow_type=None)
    workflow.parser.update(pairs=dict(overrides))
    workflow.initialize()
    try:
        workflow.run()
    except BaseException:
        try:
            workflow.finalize()
        except Exception as err:  # the run's own error matters more
            logger.debug("finalize after a failed run also failed: %s", err)
        raise
    workflow.finalize()
    return workflow
