"""BYOL pre-training throughput and memory: ``BYOLTrainer`` against a bare PyTorch loop.

The figure that matters is a *ratio*: the time per step of the real trainer (``BYOLTrainer`` fed by
a MONAI ``DataLoader`` over files on disk, with the handlers of the ``byolmed2d`` bundle attached)
divided by the time per step of a bare PyTorch loop on the same network, measured in the same
process and interleaved round by round (bare, trainer, trainer, ..., then in reverse order), so
that noise from other work on the machine hits both. Target: the trainer costs at most 10% more
per step than the bare loop.

Two models are measured:

* ``byolmed2d``: BYOL on volumes, ``SliceEncoder(resnet18_encoder(pool=False))`` (BYOLMed2D), data
  from a synthetic MRNet-layout demo through ``LoadVolumed -> SampleSlicesd -> ScaleIntensityd ->
  BYOLViewsd`` as in ``bundles/byolmed2d/configs/train.json``;
* ``byol2d``: plain 2D BYOL, ``resnet18_encoder(pool=True)``, data from the real MedMNIST
  BreastMNIST images (``../shared/data/breastmnist.npz``) through ``EnsureChannelFirstd ->
  ScaleIntensityd -> BYOLViewsd``.

It also times the momentum update of the target (the fused ``BYOL.update_target`` against a Python
loop over the parameters) and writes everything to a Markdown page (``docs/benchmarks.md``).

Every measurement runs in a subprocess of its own (one per model for the timings, one per variant
for the CPU peak memory, one for the momentum update), so peaks and caches of one do not leak into
another. Run ``python benchmarks/bench_byol_pretraining.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

MODELS: tuple[str, ...] = ("byolmed2d", "byol2d")
TARGET_RATIO = 1.10
TAU = 0.99
DEFAULT_BREASTMNIST = REPO_ROOT.parent / "shared" / "data" / "breastmnist.npz"

# Defaults per device: the CPU ones keep the whole script near 5 minutes on 2 cores; the CUDA ones
# are the bundle's recipe (batch 8 volumes of 16 slices at 224x224).
DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "batch_size": 2,
        "batch_size_2d": 16,
        "num_slices": 16,
        "image_size": 128,
        "steps": 3,
        "warmup": 1,
        "rounds": 3,
        "memory_steps": 2,
        "momentum_calls": 20,
    },
    "cuda": {
        "batch_size": 8,
        "batch_size_2d": 64,
        "num_slices": 16,
        "image_size": 224,
        "steps": 20,
        "warmup": 5,
        "rounds": 3,
        "memory_steps": 5,
        "momentum_calls": 200,
    },
}


# --------------------------------------------------------------------------------------------- helpers
def _log(message: str) -> None:
    """Progress line on stderr (stdout stays free)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock timings cover it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kib(field: str, pid: int | str = "self") -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM``, ...) of ``/proc/<pid>/status``, or None when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _private_kib(pid: int) -> int | None:
    """Private (not shared with the parent) resident memory of a process, from ``smaps_rollup``."""
    try:
        total = 0
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
        return total
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (``getrusage`` ``ru_maxrss``, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median(values: Sequence[float]) -> float:
    """Median, NaN for an empty sequence."""
    return statistics.median(values) if values else float("nan")


def _fmt_s(seconds: float) -> str:
    """Seconds with a sensible number of digits (ms below 1 s)."""
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds:.3f} s" if seconds >= 1.0 else f"{seconds * 1e3:.1f} ms"


def _fmt_us(seconds: float) -> str:
    """Microseconds or milliseconds for short calls."""
    return f"{seconds * 1e6:.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


# --------------------------------------------------------------------------------------------- models and data
def build_network(model: str, device: torch.device) -> torch.nn.Module:
    """The BYOL network of ``model`` with the bundle's head sizes (hidden 4096, projection 256)."""
    from monai_ssl.networks import BYOL, SliceEncoder, resnet18_encoder

    if model == "byolmed2d":
        encoder: torch.nn.Module = SliceEncoder(resnet18_encoder(spatial_dims=2, in_channels=1, pool=False))
    elif model == "byol2d":
        encoder = resnet18_encoder(spatial_dims=2, in_channels=1, pool=True)
    else:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    return BYOL(encoder, hidden_dim=4096, projection_dim=256).to(device)


def build_optimizer(network: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam with the bundle's learning rate and weight decay."""
    return torch.optim.Adam(network.parameters(), lr=3e-4, weight_decay=1e-6)


def view_shape(spec: dict[str, Any]) -> tuple[int, ...]:
    """Shape of one batch of one view: ``(B, 1, S, H, W)`` for volumes, ``(B, 1, H, W)`` for images."""
    size = spec["image_size"]
    if spec["model"] == "byolmed2d":
        return (spec["batch_size"], 1, spec["num_slices"], size, size)
    return (spec["batch_size"], 1, size, size)


def build_loader(spec: dict[str, Any], num_workers: int, iterations: int, device: torch.device) -> Any:
    """A ``monai.data.DataLoader`` with at least ``iterations`` full batches (no iterator restart)."""
    import numpy as np
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, EnsureChannelFirstd, ScaleIntensityd

    from monai_ssl.transforms import BYOLViewsd, LoadVolumed, SampleSlicesd

    needed = spec["batch_size"] * iterations
    if spec["model"] == "byolmed2d":
        from monai_ssl.data import mrnet_datalist

        items = mrnet_datalist(spec["data_root"], split="train", plane="sagittal")
        transform = Compose(
            [
                LoadVolumed(keys="image"),
                SampleSlicesd(keys="image", num_slices=spec["num_slices"], random_sampling=True),
                ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                BYOLViewsd(keys="image", view_keys=("view1", "view2"), spatial_size=spec["image_size"]),
            ]
        )
    else:
        images = np.load(spec["breastmnist"])["train_images"]
        items = [{"image": image.astype(np.float32)} for image in images]
        transform = Compose(
            [
                EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
                ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                BYOLViewsd(keys="image", view_keys=("view1", "view2"), spatial_size=spec["image_size"]),
            ]
        )
    # repeat the (small) datalist so one epoch holds every timed iteration: an iterator restart
    # would start the workers again inside the timed window
    items = (items * math.ceil(needed / len(items)))[: max(needed, len(items))]
    return DataLoader(
        Dataset(items, transform),
        batch_size=spec["batch_size"],
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


# --------------------------------------------------------------------------------------------- the two loops
def run_bare(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    views: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    device: torch.device,
    amp: bool = False,
) -> list[float]:
    """Bare PyTorch BYOL steps on pre-made views; returns the wall time of each step in seconds.

    One step: forward of both views, ``BYOLLoss``, ``zero_grad``, ``backward``, ``Adam.step`` and
    the fused momentum update ``update_target(tau)``, the same work as one ``BYOLTrainer``
    iteration without data loading, handlers and bookkeeping.
    """
    from monai_ssl.losses import BYOLLoss

    loss_function = BYOLLoss()
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    view1, view2 = views
    network.train()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, enabled=amp):
            out = network(view1, view2)
            loss = loss_function(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
        optimizer.zero_grad(set_to_none=False)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        network.update_target(TAU)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _bundle_handlers(optimizer: torch.optim.Optimizer, log_dir: str, devnull: Any) -> tuple[list[Any], Any]:
    """The per-iteration and per-epoch handlers of the bundle's ``train`` section, minus file writers.

    ``CheckpointSaver`` and ``EncoderExporter`` are left out: they write at epoch end and at
    completion, never inside an iteration, so they are outside a per-step figure. The progress bar
    writes to ``devnull``; TensorBoard (stats and the view grid) writes to ``log_dir``.
    """
    from monai.handlers import LrScheduleHandler, StatsHandler, TensorBoardStatsHandler, from_engine
    from torch.utils.tensorboard import SummaryWriter

    from monai_ssl.engines import byol_scalars
    from monai_ssl.handlers import CollapseMonitor, ProgressDisplay, ViewGridHandler

    writer = SummaryWriter(log_dir)
    progress = ProgressDisplay(desc="BYOL pre-training")
    progress.bar.tqdm_kwargs["file"] = devnull
    handlers = [
        LrScheduleHandler(torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2), print_lr=True),
        CollapseMonitor(threshold=0.1),
        StatsHandler(tag_name="byol_loss", iteration_log=False, output_transform=from_engine(["loss"], first=True)),
        TensorBoardStatsHandler(summary_writer=writer, output_transform=byol_scalars),
        ViewGridHandler(summary_writer=writer, view_keys=("view1", "view2")),
        progress,
    ]
    return handlers, writer


def run_trainer(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    iterations: int,
    warmup: int,
    device: torch.device,
    log_dir: str,
    amp: bool = False,
) -> dict[str, Any]:
    """One ``BYOLTrainer`` run of ``iterations`` iterations with the bundle's handlers attached.

    The time of iteration ``i`` is the interval between the end of iteration ``i - 1`` and the end
    of iteration ``i`` (after every handler), so it holds the wait for the batch, the model step,
    the handlers and the engine's own bookkeeping. The first ``warmup`` iterations (worker start-up,
    the first batch, the once-per-epoch view grid) are not counted. Each counted iteration is also
    split into: ``data`` (waiting for the batch), ``model`` (``ITERATION_STARTED`` to
    ``MODEL_COMPLETED``: copy to the device, forward, loss, backward, optimizer step, momentum
    update), ``output`` (the trainer's output dict, including ``projection_std``), ``handlers`` and
    ``other`` (the rest: engine events and bookkeeping).
    """
    from ignite.engine import Events
    from monai.engines.utils import IterationEvents

    from monai_ssl.engines import BYOLTrainer

    if warmup < 1:
        raise ValueError("the trainer needs warmup >= 1: the first iteration has no start mark")
    stamps: dict[str, dict[int, float]] = {k: {} for k in ("gb0", "gb1", "it0", "model", "out", "end")}

    def stamp(key: str, offset: int = 0) -> Callable[[Any], None]:
        def handler(engine: Any) -> None:
            _sync(device)
            stamps[key][engine.state.iteration + offset] = time.perf_counter()

        return handler

    worker_memory: list[dict[str, int | None]] = []

    def probe_workers(engine: Any) -> None:
        """Memory of the DataLoader workers, read while they are still alive (last iteration)."""
        if engine.state.iteration != iterations:
            return
        loader_iter = getattr(engine, "_dataloader_iter", None)
        for worker in getattr(loader_iter, "_workers", []) or []:
            pid = getattr(worker, "pid", None)
            if pid is not None:
                worker_memory.append({"hwm_kib": _proc_status_kib("VmHWM", pid), "private_kib": _private_kib(pid)})

    saved_lr = [group["lr"] for group in optimizer.param_groups]
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        handlers, writer = _bundle_handlers(optimizer, log_dir, devnull)
        trainer = BYOLTrainer(
            device=device,
            max_epochs=1,
            train_data_loader=loader,
            network=network,
            optimizer=optimizer,
            epoch_length=iterations,
            amp=amp,
        )
        # GET_BATCH_* fire before the iteration counter moves on: they belong to iteration + 1
        trainer.add_event_handler(Events.GET_BATCH_STARTED, stamp("gb0", 1))
        trainer.add_event_handler(Events.GET_BATCH_COMPLETED, stamp("gb1", 1))
        trainer.add_event_handler(Events.ITERATION_STARTED, stamp("it0"))
        trainer.add_event_handler(IterationEvents.MODEL_COMPLETED, stamp("model"))
        trainer.add_event_handler(Events.ITERATION_COMPLETED, stamp("out"))  # before every handler
        for handler in handlers:
            handler.attach(trainer)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, stamp("end"))  # after every handler
        trainer.add_event_handler(Events.ITERATION_COMPLETED, probe_workers)
        trainer.run()
        writer.close()
    for group, lr in zip(optimizer.param_groups, saved_lr):  # undo the scheduler's epoch step
        group["lr"] = lr

    keys = ("step", "data", "model", "output", "handlers", "other", "overhead")
    parts: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(warmup + 1, iterations + 1):
        step = stamps["end"][i] - stamps["end"][i - 1]
        data = stamps["gb1"][i] - stamps["gb0"][i]
        model = stamps["model"][i] - stamps["it0"][i]
        output = stamps["out"][i] - stamps["model"][i]
        handlers_time = stamps["end"][i] - stamps["out"][i]
        for key, value in (
            ("step", step),
            ("data", data),
            ("model", model),
            ("output", output),
            ("handlers", handlers_time),
            ("other", step - data - model - output - handlers_time),
            ("overhead", step - model),
        ):
            parts[key].append(value)
    first = {
        "step": stamps["end"][1] - stamps["gb0"][1],
        "data": stamps["gb1"][1] - stamps["gb0"][1],
        "handlers": stamps["end"][1] - stamps["out"][1],
    }
    return {"parts": parts, "first_iteration": first, "workers": worker_memory}


# --------------------------------------------------------------------------------------------- child tasks
def _variants(workers: Sequence[int]) -> list[str]:
    """Variant names: ``bare`` and ``trainer-wN`` for each worker count."""
    return ["bare"] + [f"trainer-w{n}" for n in workers]


def task_timing(spec: dict[str, Any]) -> dict[str, Any]:
    """Interleaved bare/trainer timings of one model (round ``r`` runs the variants forwards when ``r``
    is even and backwards when odd); CUDA peak memory per variant."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    network = build_network(spec["model"], device)
    optimizer = build_optimizer(network)
    shape = view_shape(spec)
    views = (torch.rand(shape, device=device), torch.rand(shape, device=device))
    variants = _variants(spec["workers"])
    result: dict[str, Any] = {v: {"rounds": []} for v in variants}
    result["_parameters"] = {
        "trainable": sum(p.numel() for p in network.parameters() if p.requires_grad),
        "target": sum(p.numel() for p in network.target_parameters()),
    }
    cuda_peak: dict[str, float] = {v: 0.0 for v in variants}
    iterations = spec["warmup"] + spec["steps"]
    _log(f"{spec['model']}: warm-up of the bare loop ({spec['warmup']} step(s))")
    run_bare(network, optimizer, views, spec["warmup"], device, spec["amp"])
    for r in range(spec["rounds"]):
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            _log(f"{spec['model']}: round {r + 1}/{spec['rounds']}, {variant}")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            if variant == "bare":
                times = run_bare(network, optimizer, views, spec["steps"], device, spec["amp"])
                result[variant]["rounds"].append({"step": times})
            else:
                workers = int(variant.split("-w")[1])
                loader = build_loader(spec, workers, iterations, device)
                with tempfile.TemporaryDirectory(prefix="bench_tb_") as log_dir:
                    run = run_trainer(
                        network, optimizer, loader, iterations, spec["warmup"], device, log_dir, spec["amp"]
                    )
                result[variant]["rounds"].append({**run["parts"], "first_iteration": run["first_iteration"]})
            if device.type == "cuda":
                cuda_peak[variant] = max(cuda_peak[variant], torch.cuda.max_memory_allocated(device) / 2**20)
    if device.type == "cuda":
        for variant in variants:
            result[variant]["cuda_peak_mib"] = cuda_peak[variant]
    return result


def _memory_variant(spec: dict[str, Any], variant: str, queue: Any) -> None:
    """Body of a forked process: build the network, run one variant, report the peak RSS."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    out: dict[str, Any] = {"rss_start_mib": (_proc_status_kib("VmRSS") or 0) / 1024.0}
    network = build_network(spec["model"], device)
    optimizer = build_optimizer(network)
    out["rss_before_mib"] = (_proc_status_kib("VmRSS") or 0) / 1024.0
    if variant == "bare":
        shape = view_shape(spec)
        views = (torch.rand(shape, device=device), torch.rand(shape, device=device))
        run_bare(network, optimizer, views, spec["warmup"] + spec["memory_steps"], device, spec["amp"])
    else:
        workers = int(variant.split("-w")[1])
        iterations = spec["warmup"] + spec["memory_steps"]
        loader = build_loader(spec, workers, iterations, device)
        with tempfile.TemporaryDirectory(prefix="bench_tb_") as log_dir:
            run = run_trainer(network, optimizer, loader, iterations, spec["warmup"], device, log_dir, spec["amp"])
        out["workers"] = run["workers"]
    out["peak_rss_mib"] = _peak_rss_mib()
    queue.put(out)


def task_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of each variant, each in a process of its own (CPU memory figure).

    The libraries are imported once here; every variant then runs in a process forked from this
    one before any network exists, so its peak (``ru_maxrss`` of the forked process, which starts
    from the RSS at the fork) holds the libraries, the network and optimizer and that variant's
    steps, and nothing of the other variants.
    """
    import multiprocessing

    import monai.data  # noqa: F401  (imported before the fork: part of every variant's baseline)
    import torch.utils.tensorboard  # noqa: F401

    import monai_ssl.data  # noqa: F401
    import monai_ssl.engines  # noqa: F401
    import monai_ssl.handlers  # noqa: F401
    import monai_ssl.losses  # noqa: F401
    import monai_ssl.networks  # noqa: F401
    import monai_ssl.transforms  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    results = {}
    for variant in spec["variants"]:
        _log(f"{spec['model']}: peak memory of {variant} in a forked process")
        queue = ctx.Queue()
        proc = ctx.Process(target=_memory_variant, args=(spec, variant, queue))
        proc.start()
        results[variant] = queue.get()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"memory run of {variant} failed with exit code {proc.exitcode}")
    return results


def task_momentum(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-call time of the fused momentum update against a Python loop over the parameters."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    network = build_network("byolmed2d", device)
    target, online = network.target_parameters(), network.online_parameters()
    with torch.no_grad():  # make the two copies differ so the update does real work
        for t in target:
            t.add_(torch.randn_like(t), alpha=1e-3)

    def python_loop(tau: float) -> None:
        with torch.no_grad():
            for t, o in zip(target, online):
                t.mul_(tau).add_(o, alpha=1.0 - tau)

    # same result: one update from the same state each way
    start_state = [t.detach().clone() for t in target]
    network.update_target(TAU)
    fused_state = [t.detach().clone() for t in target]
    with torch.no_grad():
        for t, s in zip(target, start_state):
            t.copy_(s)
    python_loop(TAU)
    max_diff = max(float((a - b).abs().max()) for a, b in zip(fused_state, target))

    calls, repeats = spec["momentum_calls"], 7
    timings: dict[str, list[float]] = {"fused": [], "loop": []}
    for _ in range(repeats):
        for name, fn in (("fused", network.update_target), ("loop", python_loop)):
            fn(TAU)  # warm
            _sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn(TAU)
            _sync(device)
            timings[name].append((time.perf_counter() - start) / calls)
    return {
        "tensors": len(target),
        "parameters": sum(t.numel() for t in target),
        "fused_s": _median(timings["fused"]),
        "loop_s": _median(timings["loop"]),
        "fused_all": timings["fused"],
        "loop_all": timings["loop"],
        "calls": calls,
        "repeats": repeats,
        "max_abs_diff": max_diff,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "timing": task_timing,
    "memory": task_memory,
    "momentum": task_momentum,
}


def _child_main(spec_path: str) -> None:
    """Entry point of a measurement subprocess: read the spec, run the task, write the result."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result = TASKS[spec["task"]](spec)
    with open(spec["result_path"], "w", encoding="utf-8") as f:
        json.dump(result, f)


def run_child(spec: dict[str, Any], work_dir: str) -> dict[str, Any]:
    """Run one task in a fresh Python process and return its JSON result."""
    name = f"{spec['task']}_{spec.get('model', '')}_{spec.get('variant', '')}"
    spec_path = os.path.join(work_dir, f"{name}.spec.json")
    spec = {**spec, "result_path": os.path.join(work_dir, f"{name}.result.json")}
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_child", spec_path], check=True, env=env)
    with open(spec["result_path"], encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------- report
def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, RAM, GPU, library versions."""
    import ignite
    import monai

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    ram_gib = float("nan")
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": ram_gib,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "monai": monai.__version__,
        "ignite": ignite.__version__,
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
    }


def _all(result: dict[str, Any], key: str) -> list[float]:
    """Every counted value of ``key`` over the rounds of one variant."""
    return [v for rnd in result["rounds"] for v in rnd.get(key, [])]


def _summarise_model(spec: dict[str, Any], timing: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:
    """Medians, ratios, rates and memory of one model's variants."""
    bare_all = _all(timing["bare"], "step")
    bare = _median(bare_all)
    rows: dict[str, Any] = {}
    for variant, res in timing.items():
        if variant.startswith("_"):
            continue
        steps = _all(res, "step")
        med = _median(steps)
        per_round = [
            _median(r["step"]) / _median(b["step"]) for r, b in zip(res["rounds"], timing["bare"]["rounds"])
        ]
        row = {
            "median": med,
            "min": min(steps),
            "max": max(steps),
            "n": len(steps),
            "ratio": med / bare,
            "round_ratios": per_round,
            "volumes_per_s": spec["batch_size"] / med,
            "slices_per_s": spec["batch_size"] * (spec["num_slices"] if spec["model"] == "byolmed2d" else 1) / med,
        }
        if variant != "bare":
            row["parts"] = {
                k: _median(_all(res, k)) for k in ("data", "model", "output", "handlers", "other", "overhead")
            }
            row["first_iteration"] = {
                k: _median([r["first_iteration"][k] for r in res["rounds"]]) for k in ("step", "data", "handlers")
            }
        if "cuda_peak_mib" in res:
            row["peak_mib"] = res["cuda_peak_mib"]
        elif variant in memory:
            row["peak_mib"] = memory[variant]["peak_rss_mib"]
            row["rss_before_mib"] = memory[variant]["rss_before_mib"]
            row["rss_start_mib"] = memory[variant]["rss_start_mib"]
            workers = memory[variant].get("workers") or []
            if workers:
                row["worker_private_mib"] = [(w.get("private_kib") or 0) / 1024.0 for w in workers]
        rows[variant] = row
    rows["bare"]["parameters"] = timing["_parameters"]
    return rows


def _model_section(spec: dict[str, Any], rows: dict[str, Any], device: torch.device) -> list[str]:
    """Markdown for one model: settings, step table, breakdown, memory."""
    med2d = spec["model"] == "byolmed2d"
    title = "BYOLMed2D (volumes, `SliceEncoder(resnet18_encoder(pool=False))`)" if med2d else (
        "Plain 2D BYOL (images, `resnet18_encoder(pool=True)`)"
    )
    size = spec["image_size"]
    if med2d:
        batch = (
            f"{spec['batch_size']} volumes x {spec['num_slices']} slices x {size}x{size} per view "
            f"({spec['batch_size'] * spec['num_slices']} slices per view, 2 views); data: synthetic "
            "MRNet-layout demo volumes (uint8 256x256, 17-22 slices) on disk, "
            "`LoadVolumed -> SampleSlicesd -> ScaleIntensityd -> BYOLViewsd`"
        )
    else:
        batch = (
            f"{spec['batch_size']} images x {size}x{size} per view (2 views); data: BreastMNIST "
            "`train_images` (real ultrasound, uint8 28x28, upsampled by the crop-resize of `BYOLViewsd`), "
            "`EnsureChannelFirstd -> ScaleIntensityd -> BYOLViewsd`"
        )
    params = rows["bare"]["parameters"]
    lines = [
        f"## {title}",
        "",
        f"Batch: {batch}. Network: {params['trainable'] / 1e6:.1f} M trainable parameters (online encoder, "
        f"projector and predictor; hidden 4096, projection 256) and {params['target'] / 1e6:.1f} M in the "
        "momentum target.",
        "",
    ]
    mem_label = "peak GPU memory (`max_memory_allocated`)" if device.type == "cuda" else "peak RSS of the process"
    rate_cols = "slices/s | volumes/s" if med2d else "images/s"
    lines += [
        f"| variant | median step | min - max | n | trainer / bare | {rate_cols} | {mem_label} |",
        "|---|---|---|---|---|---|---|" + ("---|" if med2d else ""),
    ]
    for variant, row in rows.items():
        name = "bare PyTorch loop" if variant == "bare" else (
            f"`BYOLTrainer`, num_workers={variant.split('-w')[1]}"
        )
        rates = f"{row['slices_per_s']:.2f} | {row['volumes_per_s']:.2f}" if med2d else f"{row['volumes_per_s']:.2f}"
        peak = f"{row['peak_mib']:.0f} MiB" if "peak_mib" in row else "n/a"
        ratio = "1 (reference)" if variant == "bare" else f"**{row['ratio']:.3f}**"
        lines.append(
            f"| {name} | {_fmt_s(row['median'])} | {_fmt_s(row['min'])} - {_fmt_s(row['max'])} | {row['n']} | "
            f"{ratio} | {rates} | {peak} |"
        )
    lines.append("")
    for variant, row in rows.items():
        if variant == "bare":
            continue
        verdict = "met" if row["ratio"] <= TARGET_RATIO else "NOT met"
        rr = ", ".join(f"{r:.3f}" for r in row["round_ratios"])
        lines.append(
            f"- num_workers={variant.split('-w')[1]}: trainer/bare = {row['ratio']:.3f} "
            f"({(row['ratio'] - 1) * 100:+.1f}% per step); target <= {TARGET_RATIO:.2f}: **{verdict}**. "
            f"Per-round ratios: {rr}."
        )
    lines += [
        "",
        "Where the trainer's step goes (medians of the counted iterations; `model` = copy to device, "
        "forward, loss, backward, Adam step and momentum update; `output` = the trainer's output dict "
        "incl. `projection_std`; `other` = engine events and bookkeeping):",
        "",
        "| variant | step | data wait | model | output | handlers | other | step - model "
        "| (step - model) / bare step | model / bare step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bare = rows["bare"]["median"]
    for variant, row in rows.items():
        if variant == "bare":
            continue
        p = row["parts"]
        lines.append(
            f"| num_workers={variant.split('-w')[1]} | {_fmt_s(row['median'])} | {_fmt_s(p['data'])} | "
            f"{_fmt_s(p['model'])} | {_fmt_s(p['output'])} | {_fmt_s(p['handlers'])} | {_fmt_s(p['other'])} | "
            f"{_fmt_s(p['overhead'])} | {p['overhead'] / bare * 100:.1f}% | {p['model'] / bare:.3f} |"
        )
    lines.append("")
    firsts = [
        f"num_workers={v.split('-w')[1]}: {_fmt_s(r['first_iteration']['step'])} "
        f"(data {_fmt_s(r['first_iteration']['data'])}, handlers {_fmt_s(r['first_iteration']['handlers'])})"
        for v, r in rows.items()
        if v != "bare"
    ]
    lines += [
        "First (uncounted) iteration of each trainer run, median over rounds, for reference: "
        + "; ".join(firsts)
        + ". It holds the worker start-up and the first batch, and the view grid that "
        "`ViewGridHandler` draws once per epoch.",
        "",
    ]
    if device.type != "cuda":
        lines += [
            "Peak memory (CPU) is the peak RSS (`resource.getrusage(...).ru_maxrss`) of a process that runs "
            "only that variant (warm-up + a few steps), forked from a process that has imported the "
            "libraries but built nothing. DataLoader workers are separate processes and are not in it.",
            "",
            "| variant | RSS with libraries loaded | + network and optimizer | peak | peak - before first step "
            "| workers, private memory at the last iteration |",
            "|---|---|---|---|---|---|",
        ]
        for variant, row in rows.items():
            if "rss_before_mib" not in row:
                continue
            workers = ", ".join(f"{w:.0f} MiB" for w in row.get("worker_private_mib", [])) or "-"
            lines.append(
                f"| {variant} | {row['rss_start_mib']:.0f} MiB | {row['rss_before_mib']:.0f} MiB | "
                f"{row['peak_mib']:.0f} MiB | {row['peak_mib'] - row['rss_before_mib']:.0f} MiB | {workers} |"
            )
        lines.append("")
    return lines


def _notes(specs: dict[str, dict[str, Any]], summaries: dict[str, dict[str, Any]], device: torch.device) -> list[str]:
    """Plain-language observations computed from the figures."""
    lines = ["## Notes", ""]
    for model, rows in summaries.items():
        bare_row = rows["bare"]
        bare = bare_row["median"]
        spread = (bare_row["max"] - bare_row["min"]) / bare * 100
        lines.append(
            f"- {model}: the bare loop's own steps range over {spread:.0f}% of its median "
            f"({_fmt_s(bare_row['min'])} - {_fmt_s(bare_row['max'])}): that is the noise level of a step "
            "on this machine during the run."
        )
        for variant, row in rows.items():
            if variant == "bare":
                continue
            p = row["parts"]
            parts = {k: p[k] for k in ("data", "output", "handlers", "other")}
            biggest = max(parts, key=lambda k: parts[k])
            rr = row["round_ratios"]
            lines.append(
                f"- {model}, num_workers={variant.split('-w')[1]}: everything the trainer adds around the "
                f"model step (data wait, output dict, handlers, engine) takes {_fmt_s(p['overhead'])} per step, "
                f"{p['overhead'] / bare * 100:.1f}% of the bare step, most of it `{biggest}` "
                f"({_fmt_s(parts[biggest])}); the model step inside the trainer is {p['model'] / bare:.3f}x the "
                f"bare step. The ratio of medians is {row['ratio']:.3f}; per round it goes from "
                f"{min(rr):.3f} to {max(rr):.3f}."
            )
    if device.type == "cpu":
        lines += [
            "- On CPU the model step (forward of both views through the online and the target network, "
            "backward through the online one, Adam, momentum update) is over 95% of every trainer step. "
            "With `num_workers=0` the transforms run in the training process between steps and show up as "
            "`data wait`; with `num_workers=2` they run in the workers, which share the 2 cores with "
            "the 2 PyTorch threads; that would show as a `model / bare step` above 1, and it stays within "
            "the noise because the transforms take tens of milliseconds per batch against seconds of "
            "compute.",
            "- The trainer/bare ratio of medians is itself subject to that noise (other processes share "
            "the machine), which is why the direct measurement `step - model` is given too: it does not "
            "depend on how fast the model step happened to run.",
        ]
    return lines + [""]


def write_report(
    path: Path,
    args: argparse.Namespace,
    info: dict[str, Any],
    specs: dict[str, dict[str, Any]],
    summaries: dict[str, dict[str, Any]],
    momentum: dict[str, Any] | None,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    elapsed: float,
    command: str,
) -> None:
    """Write the Markdown page."""
    device = torch.device(args.device)
    any_spec = next(iter(specs.values()))
    lines = [
        "# BYOL pre-training benchmark",
        "",
        "Generated by `benchmarks/bench_byol_pretraining.py` (see `benchmarks/README.md`); re-run it "
        "rather than editing this page by hand.",
        "",
        f"- Date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['ram_gib']:.1f} GiB RAM, GPU: {info['gpu'] or 'none'}",
        f"- Software: Python {info['python']}, torch {info['torch']}"
        + (f" (CUDA {info['cuda']})" if info["cuda"] else "")
        + f", MONAI {info['monai']}, Ignite {info['ignite']}, {info['torch_threads']} torch threads; {info['os']}",
        f"- Device: `{args.device}`, mixed precision: {'on' if args.amp else 'off'}",
        f"- Load average (1/5/15 min) at start {load[0][0]:.2f}/{load[0][1]:.2f}/{load[0][2]:.2f}, at end "
        f"{load[1][0]:.2f}/{load[1][1]:.2f}/{load[1][2]:.2f}; whole script {elapsed:.0f} s",
        f"- Command: `{command}`",
        f"- Protocol: {any_spec['rounds']} rounds per model, each running every variant (order reversed "
        f"in odd rounds); per round {any_spec['steps']} counted steps per variant after "
        f"{any_spec['warmup']} uncounted warm-up iteration(s) per trainer run (the bare loop is warmed "
        "up once). Figures are medians over all counted steps.",
        "",
        "## Summary",
        "",
        f"Target: the trainer (handlers and data loading included) costs at most {(TARGET_RATIO - 1) * 100:.0f}% "
        "more per step than the bare loop, i.e. trainer / bare <= "
        f"{TARGET_RATIO:.2f}.",
        "",
        "| model | variant | median step | trainer / bare | non-model time per step (% of bare step) "
        "| target met? |",
        "|---|---|---|---|---|---|",
    ]
    for model, rows in summaries.items():
        for variant, row in rows.items():
            if variant == "bare":
                lines.append(f"| {model} | bare loop | {_fmt_s(row['median'])} | 1 | - | - |")
            else:
                met = "yes" if row["ratio"] <= TARGET_RATIO else "**no**"
                lines.append(
                    f"| {model} | trainer, num_workers={variant.split('-w')[1]} | {_fmt_s(row['median'])} | "
                    f"{row['ratio']:.3f} | {_fmt_s(row['parts']['overhead'])} "
                    f"({row['parts']['overhead'] / rows['bare']['median'] * 100:.1f}%) | {met} |"
                )
    trainer_rows = [(m, v, r) for m, rows in summaries.items() for v, r in rows.items() if v != "bare"]
    if trainer_rows:
        worst = max(trainer_rows, key=lambda t: t[2]["ratio"])
        failed = [f"{m} num_workers={v.split('-w')[1]}" for m, v, r in trainer_rows if r["ratio"] > TARGET_RATIO]
        worst_text = f"worst ratio {worst[2]['ratio']:.3f}: {worst[0]} with num_workers={worst[1].split('-w')[1]}"
        verdict = (
            f"**Target met** by every trainer variant measured ({worst_text})."
            if not failed
            else f"**Target NOT met** by: {', '.join(failed)} ({worst_text})."
        )
        lines += ["", verdict]
    lines.append("")
    for model, rows in summaries.items():
        lines += _model_section(specs[model], rows, device)
    if momentum is not None:
        speedup = momentum["loop_s"] / momentum["fused_s"]
        lines += [
            "## Momentum update of the target",
            "",
            f"BYOLMed2D network: {momentum['tensors']} target tensors, {momentum['parameters'] / 1e6:.1f} M "
            f"parameters (encoder + projector). Median per call over {momentum['repeats']} repeats of "
            f"{momentum['calls']} calls:",
            "",
            "| implementation | per call |",
            "|---|---|",
            f"| `BYOL.update_target` (one fused `torch._foreach_lerp_`) | {_fmt_us(momentum['fused_s'])} |",
            f"| Python loop `t.mul_(tau).add_(o, alpha=1 - tau)` | {_fmt_us(momentum['loop_s'])} |",
            "",
            f"Fused / loop speed-up: {speedup:.2f}x. Largest difference between the two results after one "
            f"update from the same state: {momentum['max_abs_diff']:.1e}.",
            "",
        ]
        if device.type == "cpu":
            lines += [
                "On CPU PyTorch has no multi-tensor kernel for `_foreach_lerp_`: the fused call visits the "
                "tensors one by one in C++, so the gain over the loop is one read-modify-write pass per "
                "tensor (`lerp` instead of `mul_` then `add_`) and no Python loop. On CUDA it is a "
                "multi-tensor kernel (a few launches for all tensors instead of two per tensor), where the "
                "difference is larger.",
                "",
            ]
        if summaries:
            share = []
            for model, rows in summaries.items():
                share.append(f"{momentum['fused_s'] / rows['bare']['median'] * 100:.2f}% of the bare {model} step")
            lines += [f"The fused update is {', '.join(share)}.", ""]
    lines += _notes(specs, summaries, device)
    lines += [
        "## What is measured",
        "",
        "- **bare loop**: pre-made random views already on the device; per step forward of both views, "
        "`BYOLLoss`, `zero_grad`, `backward`, `Adam.step`, `update_target(0.99)`; wall time per step "
        "(CUDA synchronised before and after).",
        "- **trainer**: `BYOLTrainer` with a `monai.data.DataLoader` (shuffle, drop_last, pin_memory on "
        "CUDA) over files on disk and the bundle's handlers: `LrScheduleHandler`, `CollapseMonitor`, "
        "`StatsHandler` (epoch log), `TensorBoardStatsHandler` (`byol_scalars`, every iteration) and "
        "`ViewGridHandler` writing to a temporary folder, `ProgressDisplay` writing to `/dev/null`. "
        "`CheckpointSaver` and `EncoderExporter` are not attached: they write at epoch end/completion, "
        "outside any iteration. Step time = interval between the ends of consecutive iterations (after "
        "all handlers), so it contains waiting for data; the first iteration(s) of each run are not "
        "counted.",
        "- The network, optimizer and process are shared by the bare loop and the trainer of a model, "
        "and their runs alternate, so a noisy machine affects both.",
        "- Rates: slices/s = volumes/s x slices per volume (each slice is seen in two views); images/s "
        "for 2D.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the per-device defaults of ``DEFAULTS``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--model", choices=(*MODELS, "both"), default="both")
    p.add_argument("--steps", type=int, help="counted steps per variant and round (cpu 3, cuda 20)")
    p.add_argument("--warmup", type=int, help="uncounted iterations at the start of each trainer run (>= 1)")
    p.add_argument("--rounds", type=int, help="alternating rounds of bare and trainer runs (cpu 3, cuda 3)")
    p.add_argument("--batch-size", type=int, help="byolmed2d volumes per batch (cpu 2, cuda 8)")
    p.add_argument("--batch-size-2d", type=int, help="byol2d images per batch (cpu 16, cuda 64)")
    p.add_argument("--num-slices", type=int, help="slices per volume (16)")
    p.add_argument("--image-size", type=int, help="view size H = W (cpu 128, cuda 224)")
    p.add_argument(
        "--num-workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers, one trainer variant each"
    )
    p.add_argument("--memory-steps", type=int, help="steps of each CPU peak-memory run (cpu 2)")
    p.add_argument("--momentum-calls", type=int, help="calls per repeat of the momentum timing")
    p.add_argument("--no-momentum", action="store_true", help="skip the momentum-update timing")
    p.add_argument("--no-memory", action="store_true", help="skip the separate CPU peak-memory runs")
    p.add_argument("--amp", action="store_true", help="mixed precision in both loops (off by default)")
    p.add_argument("--breastmnist", type=Path, default=DEFAULT_BREASTMNIST, help="BreastMNIST .npz for byol2d")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="Markdown page to write")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        return args
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        p.error("--warmup, --steps and --rounds must be >= 1")
    if min(args.batch_size, args.batch_size_2d) < 2:
        p.error("BYOL's batch norm needs batches of at least 2")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement in subprocesses and write the report."""
    args = parse_args(argv)
    if args._child:
        _child_main(args._child)
        return
    started = time.perf_counter()
    load_start = os.getloadavg()
    device = torch.device(args.device)
    models = list(MODELS) if args.model == "both" else [args.model]
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], os.getcwd()), *sys.argv[1:]])
    info = machine_info(device)
    specs: dict[str, dict[str, Any]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    momentum = None
    with tempfile.TemporaryDirectory(prefix="bench_byol_") as work_dir:
        common = {
            "device": args.device,
            "steps": args.steps,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "num_slices": args.num_slices,
            "image_size": args.image_size,
            "workers": args.num_workers,
            "amp": args.amp,
            "memory_steps": args.memory_steps,
            "momentum_calls": args.momentum_calls,
        }
        if "byolmed2d" in models:
            from monai_ssl.data import make_mrnet_demo

            root = make_mrnet_demo(os.path.join(work_dir, "mrnet_demo"), n_train=16, n_valid=2, planes=("sagittal",))
            specs["byolmed2d"] = {**common, "model": "byolmed2d", "batch_size": args.batch_size, "data_root": str(root)}
        if "byol2d" in models:
            if not args.breastmnist.is_file():
                raise FileNotFoundError(f"{args.breastmnist} not found; pass --breastmnist or use --model byolmed2d")
            specs["byol2d"] = {
                **common,
                "model": "byol2d",
                "batch_size": args.batch_size_2d,
                "breastmnist": str(args.breastmnist),
            }
        for model, spec in specs.items():
            _log(f"{model}: timing (bare and trainer interleaved)")
            timing = run_child({**spec, "task": "timing"}, work_dir)
            memory: dict[str, Any] = {}
            if args.device == "cpu" and not args.no_memory:
                memory = run_child({**spec, "task": "memory", "variants": _variants(args.num_workers)}, work_dir)
            summaries[model] = _summarise_model(spec, timing, memory)
            for variant, row in summaries[model].items():
                _log(f"{model} {variant}: median {_fmt_s(row['median'])}, ratio {row['ratio']:.3f}")
        if not args.no_momentum:
            _log("momentum update: fused vs Python loop")
            momentum = run_child({**common, "task": "momentum"}, work_dir)
    elapsed = time.perf_counter() - started
    write_report(args.out, args, info, specs, summaries, momentum, (load_start, os.getloadavg()), elapsed, command)
    _log(f"wrote {args.out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
