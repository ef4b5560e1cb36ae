"""Peak memory of each self-supervised method's training step, per batch size, one fresh process per case.

For the cases of ``bench_ssl_methods.py`` (BYOL, DINO with a ResNet and with a ViT on 2 global + 6 local crops,
CASS), at each ``--batches`` size and for the bare step and the ``SelfSupervisedTrainer`` step, a child process builds
the network, optimizer(s) and views at that batch size and runs two steps (the first allocates the optimizer state).
On CUDA the figure is ``torch.cuda.max_memory_allocated`` (tensors only; the allocator's cache and the CUDA context not
counted); on the CPU it is the growth of the process's peak resident set size over the two steps (tensors, the
allocator's unreturned pages, everything the steps touched): the kernel's high-water mark ``VmHWM`` of
``/proc/self/status`` (what ``resource.getrusage(...).ru_maxrss`` reports for the process's own memory), reset after
the network is built by writing 5 to ``/proc/self/clear_refs``; without ``/proc``, ``ru_maxrss`` itself. A fresh
process per case keeps one case's peak from hiding the next one's. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import bench_ssl_methods as S
import harness as H

SECTION = "ssl_memory"
GPU_COMMAND = "python benchmarks/bench_ssl_memory.py --device cuda --amp --write"
VARIANTS = ("bare", "trainer")
DEFAULTS: dict[str, dict[str, Any]] = {  # network sizes: those of bench_ssl_methods.py on each device
    device: {k: v for k, v in sizes.items() if k not in ("steps", "warmup", "rounds", "batch", "cass_batch")}
    for device, sizes in S.DEFAULTS.items()
}
BATCHES = {"cuda": [16, 32, 64, 128, 256], "cpu": [4, 8, 16]}
MARK = "MEMORY "  # the child's result line: MARK + JSON


# --------------------------------------------------------------------------------------------- the child
def proc_status_mib(field: str) -> float | None:
    """``field`` of ``/proc/self/status`` in MiB (``VmHWM``: the peak resident set, ``VmRSS``: now); None if absent."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            line = next((line for line in f if line.startswith(field + ":")), None)
    except OSError:
        return None
    return None if line is None else int(line.split()[1]) / 1024  # kB


def reset_rss_peak() -> bool:
    """Restart the kernel's peak resident set size (``VmHWM``) at the current size; False where it cannot.

    Needed because Linux carries ``ru_maxrss`` across ``fork`` + ``exec``: a child started from a big process (a
    test runner) would report that process's peak.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return proc_status_mib("VmHWM") is not None


def rss_peak_mib() -> float:
    """The peak resident set size of this process in MiB: ``VmHWM``, else ``ru_maxrss`` (KiB on Linux)."""
    peak = proc_status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_peak_memory(device: torch.device) -> tuple[float, str]:
    """Start measuring a peak on ``device``: the memory in use now (MiB) and how the peak will be read.

    CUDA: ``torch.cuda.memory_allocated``, the allocator's peak reset; CPU: the resident set with the kernel's
    high-water mark ``VmHWM`` restarted (:func:`reset_rss_peak`), else the process's ``ru_maxrss`` so far.
    Read the peak with :func:`peak_memory_now`.
    """
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device) / 2**20
        H.reset_peak_memory(device)
        return before, "torch.cuda.max_memory_allocated"
    if reset_rss_peak():
        return proc_status_mib("VmRSS"), "VmHWM"  # type: ignore[return-value]
    return rss_peak_mib(), "ru_maxrss"


def peak_memory_now(device: torch.device) -> float:
    """The peak since :func:`start_peak_memory` (MiB): the CUDA allocator's, or the process's resident set."""
    return H.peak_memory_mib(device) if device.type == "cuda" else rss_peak_mib()


def measure(case_name: str, variant: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build ``case_name`` at ``batch`` images and run two steps of ``variant``; the memory before and at the peak.

    Returns:
        ``{"case", "variant", "batch", "before_mib", "peak_mib", "growth_mib", "measure"}``; ``peak_mib`` None and
        ``"error": "out of memory"`` when CUDA ran out.
    """
    args.batch = args.cass_batch = batch
    args.warmup, args.steps = 1, 1
    case = S.build_case(case_name, args)
    H.sync(args.device)
    before, how = start_peak_memory(args.device)
    result: dict[str, Any] = {"case": case_name, "variant": variant, "batch": batch, "before_mib": before,
                              "measure": how}
    try:
        if variant == "bare":
            case.network.train()
            for _ in range(2):
                case.bare_step()
        else:
            S.run_trainer(case, args)
        H.sync(args.device)
    except torch.OutOfMemoryError:
        return {**result, "peak_mib": None, "growth_mib": None, "error": "out of memory"}
    peak = peak_memory_now(args.device)
    return {**result, "peak_mib": peak, "growth_mib": peak - before}


def child_argv(case_name: str, variant: str, batch: int, args: argparse.Namespace) -> list[str]:
    """The command line of the child that measures one case: this script with ``--child`` and the sizes."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", case_name, variant, str(batch),
            "--device", args.device.type]
    for key in DEFAULTS[args.device.type]:
        argv += ["--" + key.replace("_", "-"), str(getattr(args, key))]
    if args.amp:
        argv.append("--amp")
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return argv


def run_child(case_name: str, variant: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one case in a fresh process; its result, or ``error`` with the end of its output when it failed."""
    proc = subprocess.run(child_argv(case_name, variant, batch, args), capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return {"case": case_name, "variant": variant, "batch": batch, "peak_mib": None, "growth_mib": None,
            "error": tail[0][:200]}


# --------------------------------------------------------------------------------------------- the report
def fmt_mib(value: float | None) -> str:
    """``1,234 MiB`` or ``-``."""
    return "-" if value is None else f"{value:,.0f} MiB"


def case_table(results: list[dict[str, Any]], cuda: bool) -> list[str]:
    """One row per case and batch size: per variant the growth and the peak (or the error)."""
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for r in results:
        text = r.get("error") or (f"{fmt_mib(r['growth_mib'])} (peak {fmt_mib(r['peak_mib'])})")
        cells.setdefault((r["case"], r["batch"]), {})[r["variant"]] = text
    what = "peak allocated - allocated before (peak)" if cuda else "peak RSS growth (peak RSS)"
    rows = [[case, batch, *(v.get(variant, "-") for variant in VARIANTS)] for (case, batch), v in cells.items()]
    return H.table(["case", "batch", f"bare step: {what}", f"trainer step: {what}"], rows)


def notes(args: argparse.Namespace) -> list[str]:
    """What the figures are, on this device."""
    cuda = args.device.type == "cuda"
    measure = ("**`torch.cuda.max_memory_allocated`** after `reset_peak_memory_stats` once the network, optimizer(s) "
               "and views were on the device: tensors only (parameters, views, gradients, optimizer state, "
               "activations); growth = peak - `memory_allocated` before the first step" if cuda else
               "**the process's peak resident set size**: the kernel's high-water mark `VmHWM` of `/proc/self/status` "
               "(the figure `resource.getrusage(RUSAGE_SELF).ru_maxrss` gives, which Linux carries across `fork` + "
               "`exec` from the parent, hence the reset), restarted by writing 5 to `/proc/self/clear_refs` once the "
               "network, optimizer(s) and views are built; growth = peak after the two steps - resident size at that "
               "reset; peak = that peak of the whole process (torch and MONAI included). The allocator keeps some "
               "freed pages, so the growth is an upper bound of the tensors' own peak. `tracemalloc` does not see "
               "tensor memory, so it is not used")
    return [
        "## What is measured", "",
        f"- Measure: {measure}.",
        "- One fresh Python process per (case, variant, batch size), so each peak is that case's alone. Two steps: "
        "the first allocates the optimizer state (Adam / AdamW moments), the second is a steady step.",
        "- **bare**: the method's step of `bench_ssl_methods.py` (forward of the views, loss, backward, optimizer "
        "step(s), target update); **trainer**: `SelfSupervisedTrainer` with the method over an in-memory list of the "
        "same views, which also keeps the last iteration's output (views, scalars) for handlers.",
        "- Networks and views: those of `bench_ssl_methods.py` on this device (its table gives each case's network); "
        "the batch is the number of images, every view of each (DINO: 2 global + local crops).",
        "",
    ]


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--methods", nargs="+", choices=tuple(S.METHOD_CASES), default=list(S.METHOD_CASES))
    p.add_argument("--batches", type=int, nargs="+", help=f"batch sizes (cuda {BATCHES['cuda']}, cpu {BATCHES['cpu']})")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--child", nargs=3, metavar=("CASE", "VARIANT", "BATCH"), help=argparse.SUPPRESS)
    args = H.parse(p, argv, DEFAULTS)
    args.batches = args.batches or BATCHES[args.device.type]
    if min(args.batches) < 1:
        p.error(f"--batches must be >= 1, got {args.batches}")
    if args.cnn_depth not in (18, 50):
        p.error("--cnn-depth must be 18 or 50")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure every case in its own process, print the page section and, with ``--write``, write it; the results."""
    args = parse_args(argv)
    if args.child:
        case_name, variant, batch = args.child
        print(MARK + json.dumps(measure(case_name, variant, int(batch), args)), flush=True)
        return []
    session = H.Session(args.device, "bf16 autocast" if args.amp else "off")
    results = []
    for name in (c for m in args.methods for c in S.METHOD_CASES[m]):
        for batch in args.batches:
            for variant in args.variants:
                results.append(run_child(name, variant, batch, args))
                r = results[-1]
                H.log(f"{name} {variant} batch {batch}: " + (r.get("error") or f"+{fmt_mib(r['growth_mib'])}"))
    sizes = f"batch sizes {', '.join(map(str, args.batches))}; two steps per case"
    lines = session.header("Peak memory of the self-supervised methods per batch size", sizes, GPU_COMMAND)
    lines += case_table(results, args.device.type == "cuda") + [""] + notes(args)
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)
    return results


if __name__ == "__main__":
    main()
