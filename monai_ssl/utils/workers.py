"""How many data-loader workers a training process gets by default."""

from __future__ import annotations

import os

__all__ = ["available_cores", "default_num_workers"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_workers(max_workers: int = 16) -> int:
    """Loader workers for one training process: its share of the cores, less one for itself.

    The cores are shared by the processes of a ``torchrun`` job on this machine (``LOCAL_WORLD_SIZE``);
    each keeps one core for its own loop (the training step, the GPU views) and gives the rest to its
    workers, at most ``max_workers`` (more rarely helps and each worker holds its own memory). On a
    2-core machine that is 1 worker; on a 16-core GPU server, 15.
    """
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    share = available_cores() // processes
    return max(0, min(max_workers, share - 1))
