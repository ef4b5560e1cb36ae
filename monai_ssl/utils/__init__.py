"""Small shared utilities."""

from __future__ import annotations

from .atomic import atomic_directory, atomic_path, atomic_torch_save, atomic_write_text
from .bundle_workflow import run_config_workflow
from .devices import default_amp_dtype, default_device, default_sync_interval
from .distributed import (
    close_writer,
    ddp_device_ids,
    destroy_distributed,
    dist_backend,
    distributed_members,
    init_distributed,
    local_device,
    rank_zero_writer,
    set_local_cuda_device,
)
from .logging import configure_logging
from .overlay import declare_base, require_base, withdraw_base
from .readable_errors import install_readable_errors, readable_error
from .schedules import cosine_schedule
from .settings import choose, disabled_unless, require_flags
from .workers import available_cores, default_num_workers

__all__ = [
    "run_config_workflow",
    "atomic_directory",
    "atomic_path",
    "atomic_torch_save",
    "atomic_write_text",
    "available_cores",
    "choose",
    "close_writer",
    "cosine_schedule",
    "configure_logging",
    "ddp_device_ids",
    "destroy_distributed",
    "dist_backend",
    "distributed_members",
    "init_distributed",
    "local_device",
    "rank_zero_writer",
    "set_local_cuda_device",
    "default_amp_dtype",
    "default_device",
    "default_sync_interval",
    "disabled_unless",
    "declare_base",
    "default_num_workers",
    "install_readable_errors",
    "readable_error",
    "require_base",
    "require_flags",
    "withdraw_base",
]
