"""The benchmarks' shared harness: timing, interleaved rounds, statistics, the machine, the page's sections.

Every script here times a few *variants* of the same work (a bare PyTorch loop, the library's engine) and
compares their throughputs: :func:`timed` (``time.perf_counter``, CUDA synchronised before and after),
:func:`interleave` (every variant once per round, the order reversed every other round, so that a machine that
gets slower or faster affects all variants alike), :class:`Stats`, :class:`Session` (the machine, the software,
the load, the section's header) and :func:`write_section` (only the text between the section's markers
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` of ``docs/benchmarks.md`` is replaced).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = REPO_ROOT / "docs" / "benchmarks.md"
T = TypeVar("T")


def log(message: str) -> None:
    """Print a progress line on stderr (stdout carries the Markdown section)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """Seconds taken by ``fn()``, the device synchronised before and after, and what it returned."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def interleave(
    variants: Mapping[str, Callable[[], T]], rounds: int, before_each: Callable[[], Any] | None = None
) -> dict[str, list[T]]:
    """Run every variant once per round, alternating their order, and collect what each run returned.

    Args:
        variants: name -> a callable that runs the variant once (one measurement).
        rounds: how many times to run every variant.
        before_each: called before every run (e.g. :meth:`Session.probe`).

    Returns:
        name -> the results of its runs, in round order.
    """
    results: dict[str, list[T]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            log(f"round {r + 1}/{rounds}: {name}")
            if before_each is not None:
                before_each()
            results[name].append(variants[name]())
    return results


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak of allocated device memory (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak memory allocated by tensors on ``device`` since :func:`reset_peak_memory`, in MiB; None off CUDA."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class IterationClock:
    """The end times of a trainer's iterations, from Ignite's ``ITERATION_COMPLETED`` (attach it after every handler).

    The device is synchronised at the end of the warm-up and of the run, and the peak memory is reset after the
    warm-up; :meth:`steps` are the intervals between the ends of consecutive counted iterations, :meth:`total` the
    time from the warm-up's end to the last one.
    """

    def __init__(self, trainer: Any, device: torch.device, warmup: int, total: int) -> None:
        from ignite.engine import Events

        self.device, self.warmup, self.total = device, warmup, total
        self.ends: list[float] = []
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._end)

    def _end(self, engine: Any) -> None:
        if engine.state.iteration in (self.warmup, self.total):
            sync(self.device)
        if engine.state.iteration == self.warmup:
            reset_peak_memory(self.device)
        self.ends.append(time.perf_counter())

    def steps(self) -> list[float]:
        """Seconds of each counted iteration."""
        return [b - a for a, b in zip(self.ends[self.warmup - 1 : -1], self.ends[self.warmup :])]

    def elapsed(self) -> float:
        """Seconds from the end of the warm-up to the end of the last iteration."""
        return self.ends[-1] - self.ends[self.warmup - 1]


class LoaderWaits:
    """How long a trainer waits for each batch: Ignite's ``GET_BATCH_STARTED`` to ``GET_BATCH_COMPLETED``."""

    def __init__(self, trainer: Any) -> None:
        from ignite.engine import Events

        self.waits: dict[int, float] = {}
        trainer.add_event_handler(Events.GET_BATCH_STARTED, self._asked)
        trainer.add_event_handler(Events.GET_BATCH_COMPLETED, self._got)

    def _asked(self, engine: Any) -> None:
        self.waits[engine.state.iteration + 1] = -time.perf_counter()

    def _got(self, engine: Any) -> None:
        self.waits[engine.state.iteration + 1] += time.perf_counter()

    def counted(self, warmup: int, total: int) -> list[float]:
        """Seconds of waiting for each counted iteration (after the ``warmup`` first, up to ``total``)."""
        return [self.waits[i] for i in range(warmup + 1, total + 1)]


def contention_probe(calls: int = 15) -> float:
    """Median seconds of a tiny OpenMP parallel region (``torch.exp`` of 2^17 floats on the CPU): tens of µs on
    idle cores, milliseconds when another process holds a core that an intra-op thread waits for."""
    x = torch.ones(2**17)
    return statistics.median(timed(lambda: torch.exp(x), torch.device("cpu"))[0] for _ in range(calls))


# --------------------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Stats:
    """Median, min, max and count of some measurements."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        """The statistics of ``values`` (at least one)."""
        v = list(values)
        return cls(statistics.median(v), min(v), max(v), len(v))

    @property
    def spread(self) -> float:
        """``(max - min) / median``: how much the measurements vary."""
        return (self.max - self.min) / self.median if self.median else float("nan")


# --------------------------------------------------------------------------------------------- formatting
def fmt_time(seconds: float) -> str:
    """``12 µs``, ``3.4 ms`` or ``1.234 s``."""
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.1f} ms" if abs(seconds) < 1.0 else f"{seconds:.3f} s"


def fmt_rate(value: float) -> str:
    """A throughput with about three significant digits (``1234``, ``56.7``, ``8.91``)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def verdict(met: bool) -> str:
    """``**met**`` or ``**NOT met**``."""
    return "**met**" if met else "**NOT met**"


# --------------------------------------------------------------------------------------------- the command line
Defaults = Mapping[str, Mapping[str, Any]]  # device type -> option -> default


def parser(description: str, defaults: Defaults) -> argparse.ArgumentParser:
    """A parser with the shared options (device, amp, threads, write, out) and one per size in ``defaults``."""
    p = argparse.ArgumentParser(description=description)
    for name, value in defaults["cpu"].items():  # integers, or tuples of them (several values)
        nargs = len(value) if isinstance(value, tuple) else None
        help_ = f"cuda {defaults['cuda'][name]}, cpu {value}"
        p.add_argument("--" + name.replace("_", "-"), type=int, nargs=nargs, help=help_)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="mixed precision, as the bundles run on a GPU")
    p.add_argument("--threads", type=int, help="torch intra-op threads (1 steadies CPU figures on shared cores)")
    p.add_argument("--write", action="store_true", help="replace this script's section of --out")
    p.add_argument("--out", type=Path, default=PAGE, help="the Markdown page (default docs/benchmarks.md)")
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None, defaults: Defaults) -> argparse.Namespace:
    """Parse ``argv``: unset sizes from ``defaults[device]``, set the torch threads, ``args.device`` a device."""
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but CUDA is not available")
    for key, value in defaults[args.device].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = torch.device(args.device)
    return args


# --------------------------------------------------------------------------------------------- the machine
def _proc(path: str, prefix: str) -> str | None:
    """What follows ``prefix`` on the first line of ``path`` that starts with it (Linux ``/proc`` files)."""
    try:
        with open(path, encoding="utf-8") as f:
            return next((line[len(prefix):].strip(" :\t\n") for line in f if line.startswith(prefix)), None)
    except OSError:
        return None


def machine_lines(device: torch.device) -> list[str]:
    """Markdown bullets: CPU model, cores, RAM, GPU, library versions and torch threads."""
    import ignite
    import monai

    cpu = _proc("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    mem_kib = int((_proc("/proc/meminfo", "MemTotal:") or "0 kB").split()[0])
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = "none"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores ({usable} usable), {mem_kib / 2**20:.1f} GiB RAM; GPU: {gpu}",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__}, MONAI {monai.__version__}, "
        f"Ignite {ignite.__version__}; torch threads: {torch.get_num_threads()}; {platform.platform()}",
    ]


class Session:
    """One run of a script, created at its start (time, load average, command line); writes the section's header.

    Args:
        device: the device measured.
        precision: how the run computes, e.g. ``"bf16 autocast, channels_last"`` or ``"off"``.
    """

    def __init__(self, device: torch.device, precision: str) -> None:
        self.device = device
        self.precision = precision
        self.started = time.perf_counter()
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load_start = os.getloadavg()
        script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO_ROOT)
        self.command = "python " + shlex.join([script, *sys.argv[1:]])
        self.probes: list[float] = []

    def probe(self) -> None:
        """Record a :func:`contention_probe` (CPU runs only; call it before each timed run)."""
        if self.device.type == "cpu":
            self.probes.append(contention_probe())

    def header(self, title: str, sizes: str, gpu_command: str) -> list[str]:
        """The section's heading and the bullets that describe the run.

        Args:
            title: the top-level heading, e.g. ``"BYOL pre-training benchmark"``.
            sizes: one line on the sizes measured.
            gpu_command: the command that measures the GPU figures, quoted on CPU runs.
        """
        load_end = os.getloadavg()
        lines = [
            f"# {title}",
            "",
            f"Generated by `{self.command.split()[1]}` (see `benchmarks/README.md`) between the `bench` markers of "
            "this page; re-run it rather than editing this section by hand.",
            "",
            f"- Date: {self.date}",
            *machine_lines(self.device),
            f"- Device: `{self.device}`, mixed precision: {self.precision}",
            f"- Sizes: {sizes}",
            f"- Load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in self.load_start)}, at end "
            f"{'/'.join(f'{x:.2f}' for x in load_end)}; whole script {time.perf_counter() - self.started:.0f} s",
        ]
        if self.probes:
            p = Stats.of(self.probes)
            lines.append(f"- Contention probe (`torch.exp` of 2^17 floats, tens of µs on idle cores) before each "
                         f"timed run: median {fmt_time(p.median)}, max {fmt_time(p.max)}")
        lines += [f"- Command: `{self.command}`", ""]
        if self.device.type != "cuda":
            lines += [f"**These are CPU figures**, at sizes chosen to finish in minutes: they check that the code runs "
                      "and show its overheads, not GPU throughput. The GPU figures (targets for one H100) are still to "
                      f"be measured: run `{gpu_command}` on a GPU machine.", ""]
        return lines


# --------------------------------------------------------------------------------------------- the page
def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the part between the markers of ``name`` replaced by ``body``; appended if absent.

    Raises:
        ValueError: only one of the two markers is there, or they are out of order.
    """
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip(chr(10))}\n{end}"
    i, j = text.find(start), text.find(end)
    if i < 0 and j < 0:
        return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    if i < 0 or j < i:
        raise ValueError(f"the page has a broken pair of markers {start} ... {end}; fix it by hand")
    return text[:i] + block + text[j + len(end):]


def write_section(name: str, lines: Sequence[str], path: Path = PAGE) -> None:
    """Replace section ``name`` of the Markdown page ``path`` with ``lines`` (see :func:`replace_section`)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, name, "\n".join(lines)), encoding="utf-8")
    log(f"updated section {name!r} of {path}")
