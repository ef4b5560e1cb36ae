"""Small shared utilities."""

from __future__ import annotations

from .atomic import atomic_directory, atomic_path, atomic_torch_save, atomic_write_text
from .logging import configure_logging
from .overlay import declare_base, require_base, withdraw_base
from .readable_errors import install_readable_errors, readable_error
from .settings import choose, require_flags
from .workers import available_cores, default_num_workers

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_torch_save",
    "atomic_write_text",
    "available_cores",
    "choose",
    "configure_logging",
    "declare_base",
    "default_num_workers",
    "install_readable_errors",
    "readable_error",
    "require_base",
    "require_flags",
    "withdraw_base",
]
