"""Cross-teaching throughput and memory: ``CrossTeachingTrainer`` and ``SegmentationPair`` against bare PyTorch.

The networks are those of ``bundles/isic_cross_teaching/configs/train.json``: a MONAI ``UNet`` (channels
16-256, 2 residual units) and a 2D ``SwinUNETR`` (feature size 24), 3 input channels, 2 classes, one Adam
each (lr 3.6e-4, weight decay 1e-5), ``CrossTeachingLoss``. Two measurements, both on random tensors
already on the device (data loading is not measured):

1. **Training.** ``CrossTeachingTrainer`` fed by plain lists of pre-made batches (a labeled batch with
   masks, an unlabeled batch) against a bare loop that does the same work on the same batches: one
   forward of labeled + unlabeled images through each network, the same ``CrossTeachingLoss`` with the
   same ramped weight, ``zero_grad``, ``backward``, both ``Adam.step`` (through a ``GradScaler`` under
   amp on CUDA). A third variant adds the bundle's per-iteration handlers to the trainer. The variants
   alternate repeat by repeat (forwards in even repeats, backwards in odd ones) on the same networks and
   optimizers; the headline is the ratio of throughputs trainer / bare (median step of the bare loop over
   median step of the trainer), target >= 0.9. Peak memory: ``torch.cuda.max_memory_allocated`` per
   variant on CUDA; on CPU the growth of the peak RSS (``resource.getrusage``) of a process forked before
   anything is built and running only that variant.
2. **Inference.** The bundle's ``SlidingWindowInferer(roi_size=(patch, patch), sw_batch_size=4,
   overlap=0.25)`` over 480x480 images (batch 1, like the bundle's validation loader) with
   ``SegmentationPair(output="cnn")`` and ``output="mean"``, against the same inferer on the bare UNet and
   on the two bare networks one after the other, under ``torch.inference_mode()`` (and autocast with
   ``--amp``); images/s and ratios.

The results go into their own section of a Markdown page (``docs/benchmarks.md``) with ``--write``: the
section that starts with ``# Cross-teaching (ISIC bundle)`` is replaced (up to the next top-level
heading), or appended when the page has none. Run ``python benchmarks/bench_cross_teaching.py --help``
for the options.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):  # run from a checkout without installing; the other benchmarks' helpers
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from bench_byol_pretraining import _fmt_s, _fmt_us, _log, _median, _peak_rss_mib, _proc_status_kib  # noqa: E402
from bench_byol_pretraining import _sync, machine_info  # noqa: E402
from bench_pseudo_label_scoring import _median_call, contention_probe  # noqa: E402

SECTION_HEADING = "# Cross-teaching (ISIC bundle)"
TARGET_THROUGHPUT_RATIO = 0.90  # trainer it/s >= 0.9 x bare it/s
IMAGE_SIZE = 480  # the bundle's working_size: validation images are resized to 480x480
NUM_CLASSES = 2
TRAIN_VARIANTS: tuple[str, ...] = ("bare", "trainer", "trainer+handlers")
INFER_VARIANTS: tuple[str, ...] = ("bare-unet", "pair-cnn", "bare-both", "pair-mean")

# Defaults per device: the CPU ones keep the whole script near 3 minutes on 2 cores (patch 96 instead of
# the bundle's 224); the CUDA ones are the bundle's recipe.
DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {"patch_size": 96, "iterations": 3, "warmup": 1, "repeats": 3, "images": 2, "memory_steps": 1},
    "cuda": {"patch_size": 224, "iterations": 20, "warmup": 3, "repeats": 5, "images": 16, "memory_steps": 5},
}


# --------------------------------------------------------------------------------------------- building blocks
def build_networks(device: torch.device) -> dict[str, torch.nn.Module]:
    """The bundle's two networks, ``{"cnn": UNet, "transformer": SwinUNETR}``, on ``device``."""
    from monai.networks.nets import SwinUNETR, UNet

    cnn = UNet(
        spatial_dims=2,
        in_channels=3,
        out_channels=NUM_CLASSES,
        channels=(16, 32, 64, 128, 256),
        strides=(2, 2, 2, 2),
        num_res_units=2,
    )
    transformer = SwinUNETR(spatial_dims=2, in_channels=3, out_channels=NUM_CLASSES, feature_size=24)
    return {"cnn": cnn.to(device), "transformer": transformer.to(device)}


def build_optimizers(networks: dict[str, torch.nn.Module]) -> list[torch.optim.Optimizer]:
    """One Adam per network with the bundle's learning rate and weight decay, in the networks' order."""
    return [torch.optim.Adam(n.parameters(), lr=3.6e-4, weight_decay=1e-5) for n in networks.values()]


def make_batches(spec: dict[str, Any], device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A labeled batch ``{"image", "label"}`` and an unlabeled batch ``{"image"}`` of random patches on ``device``."""
    size = spec["patch_size"]
    generator = torch.Generator().manual_seed(0)
    labeled = {
        "image": torch.rand(spec["labeled_batch_size"], 3, size, size, generator=generator).to(device),
        "label": torch.randint(0, NUM_CLASSES, (spec["labeled_batch_size"], 1, size, size), generator=generator)
        .float()
        .to(device),
    }
    unlabeled = {"image": torch.rand(spec["unlabeled_batch_size"], 3, size, size, generator=generator).to(device)}
    return labeled, unlabeled


# --------------------------------------------------------------------------------------------- training loops
def run_bare(
    networks: dict[str, torch.nn.Module],
    optimizers: Sequence[torch.optim.Optimizer],
    batches: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]],
    steps: int,
    device: torch.device,
    amp: bool,
) -> dict[str, list[float]]:
    """Bare cross-teaching steps; the wall time of each step and of its phases, in seconds.

    One step: ``zero_grad`` of both optimizers, one forward of labeled + unlabeled images through each
    network, ``CrossTeachingLoss`` with the ramped weight, ``backward`` and both optimizer steps (through a
    ``torch.amp.GradScaler`` under amp on CUDA, as a hand-written amp loop does), then the step's tensors are
    dropped (``output`` phase), as the trainer drops them when ``_iteration`` returns: freeing the logits and
    their autograd graph takes milliseconds, and a loop that kept them until the next forward would also
    hold them through it. Step times run from the end of one step to the end of the next (CUDA synchronised
    there); the phases are host-side times.
    """
    from monai_ssl.losses import CrossTeachingLoss, cross_teaching_weight

    loss_function = CrossTeachingLoss()
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    labeled, unlabeled = batches
    images, labels, n_labeled = labeled["image"], labeled["label"], labeled["image"].shape[0]
    nets = list(networks.values())
    for network in nets:
        network.train()
    times: dict[str, list[float]] = {k: [] for k in ("step", "forward", "loss", "backward", "optimizer", "output")}
    _sync(device)
    last = time.perf_counter()
    for step in range(steps):
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=False)
        weight = cross_teaching_weight(step, steps)
        inputs = torch.cat([images, unlabeled["image"]], dim=0)
        with torch.autocast(device.type, enabled=amp):
            logits = [network(inputs) for network in nets]
            t_forward = time.perf_counter()
            terms = loss_function([lg[:n_labeled] for lg in logits], labels, [lg[n_labeled:] for lg in logits], weight)
        t_loss = time.perf_counter()
        if scaler is not None:
            scaler.scale(terms.loss).backward()
            t_backward = time.perf_counter()
            for optimizer in optimizers:
                scaler.step(optimizer)
            scaler.update()
        else:
            terms.loss.backward()
            t_backward = time.perf_counter()
            for optimizer in optimizers:
                optimizer.step()
        t_step = time.perf_counter()
        del inputs, logits, terms
        _sync(device)
        end = time.perf_counter()
        for key, value in (
            ("step", end - last),
            ("forward", t_forward - last),
            ("loss", t_loss - t_forward),
            ("backward", t_backward - t_loss),
            ("optimizer", t_step - t_backward),
            ("output", end - t_step),
        ):
            times[key].append(value)
        last = end
    return times


def bundle_iteration_handlers(log_dir: str, devnull: Any) -> tuple[list[Any], Any]:
    """The per-iteration handlers of the bundle's ``train#handlers`` (TensorBoard to ``log_dir``, bar to ``devnull``).

    ``StatsHandler`` (epoch log only), ``TensorBoardStatsHandler`` with ``cross_teaching_scalars`` (every
    iteration) and ``ProgressDisplay``. The LR schedulers, ``ValidationHandler`` and ``CheckpointSaver``
    act at epoch end only and are left out.
    """
    from monai.handlers import StatsHandler, TensorBoardStatsHandler, from_engine
    from torch.utils.tensorboard import SummaryWriter

    from monai_ssl.engines import cross_teaching_scalars
    from monai_ssl.handlers import ProgressDisplay

    writer = SummaryWriter(log_dir)
    progress = ProgressDisplay(desc="cross_teaching")
    progress.bar.tqdm_kwargs["file"] = devnull
    handlers = [
        StatsHandler(tag_name="train_loss", iteration_log=False, output_transform=from_engine(["loss"], first=True)),
        TensorBoardStatsHandler(summary_writer=writer, output_transform=cross_teaching_scalars),
        progress,
    ]
    return handlers, writer


def run_trainer(
    networks: dict[str, torch.nn.Module],
    optimizers: Sequence[torch.optim.Optimizer],
    batches: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]],
    iterations: int,
    warmup: int,
    device: torch.device,
    amp: bool,
    handlers: bool = False,
) -> dict[str, list[float]]:
    """One ``CrossTeachingTrainer`` run of ``warmup + iterations`` iterations over lists of pre-made batches.

    The step time of iteration ``i`` is the interval between the ends of iterations ``i - 1`` and ``i``
    (after every handler; CUDA synchronised there); the first ``warmup`` iterations are not counted. The
    phases come from the trainer's events (host-side times): ``data`` (``GET_BATCH_*``), ``forward``
    (``ITERATION_STARTED`` to ``FORWARD_COMPLETED``: batch preparation, ``train()``, ``zero_grad``, the
    forward passes), ``loss``, ``backward`` (incl. the NaN check), ``optimizer`` (to ``MODEL_COMPLETED``),
    ``output`` (the output dict and the release of the step's tensors when ``_iteration`` returns),
    ``handlers`` and ``other`` (engine bookkeeping).
    """
    from ignite.engine import Events
    from monai.engines.utils import IterationEvents

    from monai_ssl.engines import CrossTeachingTrainer

    if warmup < 1:
        raise ValueError("the trainer needs warmup >= 1: the first iteration has no start mark")
    total = warmup + iterations
    labeled, unlabeled = batches
    marks: dict[str, dict[int, float]] = {}

    def mark(key: str, offset: int = 0, sync: bool = False) -> Callable[[Any], None]:
        marks[key] = {}

        def handler(engine: Any) -> None:
            if sync:
                _sync(device)
            marks[key][engine.state.iteration + offset] = time.perf_counter()

        return handler

    with tempfile.TemporaryDirectory(prefix="bench_ct_tb_") as log_dir, open(os.devnull, "w") as devnull:
        trainer = CrossTeachingTrainer(
            device=device,
            max_epochs=1,
            train_data_loader=[labeled] * total,
            unlabeled_data_loader=[unlabeled] * total,
            networks=networks,
            optimizers=optimizers,
            epoch_length=total,
            amp=amp,
        )
        # GET_BATCH_* fire before the iteration counter moves on: they belong to iteration + 1
        trainer.add_event_handler(Events.GET_BATCH_STARTED, mark("get0", 1))
        trainer.add_event_handler(Events.GET_BATCH_COMPLETED, mark("get1", 1))
        trainer.add_event_handler(Events.ITERATION_STARTED, mark("start"))
        trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, mark("forward"))
        trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, mark("loss"))
        trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, mark("backward"))
        trainer.add_event_handler(IterationEvents.MODEL_COMPLETED, mark("model"))
        trainer.add_event_handler(Events.ITERATION_COMPLETED, mark("output"))  # before every handler
        writer = None
        if handlers:
            attached, writer = bundle_iteration_handlers(log_dir, devnull)
            for handler in attached:
                handler.attach(trainer)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, mark("end", sync=True))  # after every handler
        trainer.run()
        if writer is not None:
            writer.close()
    m = marks
    times: dict[str, list[float]] = {}
    for i in range(warmup + 1, total + 1):
        step = m["end"][i] - m["end"][i - 1]
        parts = {
            "data": m["get1"][i] - m["get0"][i],
            "forward": m["forward"][i] - m["start"][i],
            "loss": m["loss"][i] - m["forward"][i],
            "backward": m["backward"][i] - m["loss"][i],
            "optimizer": m["model"][i] - m["backward"][i],
            "output": m["output"][i] - m["model"][i],
            "handlers": m["end"][i] - m["output"][i],
        }
        parts["other"] = step - sum(parts.values())
        for key, value in {"step": step, **parts}.items():
            times.setdefault(key, []).append(value)
    return times


def time_trainer_extras(
    networks: dict[str, torch.nn.Module],
    optimizers: Sequence[torch.optim.Optimizer],
    batches: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]],
    device: torch.device,
    calls: int = 20,
) -> dict[str, float]:
    """Median seconds per call of the work ``CrossTeachingTrainer`` does in a step and the bare loop does not.

    ``train()`` of both networks (every iteration), the NaN check of the loss (``check_finite``: one host
    sync), the all-gradients finiteness check that the trainer's amp path runs before stepping two
    optimizers (``_gradients_finite``: a norm over every gradient and one host sync; taken whenever the
    trainer has a ``GradScaler`` and ``amp``, also on CPU where MONAI's scaler is disabled), and the
    bundle's ``cross_teaching_scalars`` (one host sync per tensor). CUDA is synchronised around each call.
    """
    from monai_ssl.engines import cross_teaching_scalars
    from monai_ssl.engines.step_trainer import _gradients_finite
    from monai_ssl.losses import CrossTeachingLoss

    labeled, unlabeled = batches
    n = labeled["image"].shape[0]
    logits = [net(torch.cat([labeled["image"], unlabeled["image"]])) for net in networks.values()]
    terms = CrossTeachingLoss()([lg[:n] for lg in logits], labeled["label"], [lg[n:] for lg in logits], 0.1)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=False)
    terms.loss.backward()  # gradients for the finiteness check; no optimizer step
    output = {"loss": terms.loss.detach(), "cross_weight": 0.1}
    for name, sup, cross in zip(networks, terms.supervised, terms.cross):
        output.update({f"supervised_loss_{name}": sup.detach(), f"cross_loss_{name}": cross.detach()})
        output[f"lr_{name}"] = 0.1
    pieces: dict[str, Callable[[], Any]] = {
        "train()": lambda: [net.train() for net in networks.values()],
        "check_finite": lambda: bool(torch.isfinite(terms.loss)),
        "gradients_finite": lambda: _gradients_finite(optimizers),
        "cross_teaching_scalars": lambda: cross_teaching_scalars(output),
    }
    result = {name: _median_call(fn, calls, device) for name, fn in pieces.items()}
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=False)
    return result


def measure_training(spec: dict[str, Any]) -> dict[str, Any]:
    """Interleaved repeats of every training variant on shared networks and optimizers."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    networks = build_networks(device)
    optimizers = build_optimizers(networks)
    batches = make_batches(spec, device)
    _log(f"training: warm-up of the bare loop ({spec['warmup']} step(s))")
    run_bare(networks, optimizers, batches, spec["warmup"], device, spec["amp"])
    raw: dict[str, list[dict[str, list[float]]]] = {v: [] for v in TRAIN_VARIANTS}
    cuda_peak = {v: 0.0 for v in TRAIN_VARIANTS}
    probes: list[float] = []
    for r in range(spec["repeats"]):
        for variant in TRAIN_VARIANTS if r % 2 == 0 else TRAIN_VARIANTS[::-1]:
            _log(f"training: repeat {r + 1}/{spec['repeats']}, {variant}")
            probes.append(contention_probe())
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            if variant == "bare":
                times = run_bare(networks, optimizers, batches, spec["iterations"], device, spec["amp"])
            else:
                times = run_trainer(
                    networks, optimizers, batches, spec["iterations"], spec["warmup"], device, spec["amp"],
                    handlers=variant == "trainer+handlers",
                )
            raw[variant].append(times)
            if device.type == "cuda":
                cuda_peak[variant] = max(cuda_peak[variant], torch.cuda.max_memory_allocated(device) / 2**20)
    _log("training: timing the trainer's extra work per step")
    extras = time_trainer_extras(networks, optimizers, batches, device)
    parameters = {name: sum(p.numel() for p in n.parameters()) for name, n in networks.items()}
    return {
        "raw": raw,
        "extras": extras,
        "cuda_peak_mib": cuda_peak if device.type == "cuda" else None,
        "parameters": parameters,
        "probes": probes,
    }


def _memory_child(spec: dict[str, Any], variant: str, queue: Any) -> None:
    """Body of a forked process: build everything, run one variant, report the RSS before and the peak."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    networks = build_networks(device)
    optimizers = build_optimizers(networks)
    batches = make_batches(spec, device)
    before = (_proc_status_kib("VmRSS") or 0) / 1024.0
    if variant == "bare":
        run_bare(networks, optimizers, batches, spec["warmup"] + spec["memory_steps"], device, spec["amp"])
    else:
        run_trainer(networks, optimizers, batches, spec["memory_steps"], spec["warmup"], device, spec["amp"])
    queue.put({"rss_before_mib": before, "peak_rss_mib": _peak_rss_mib()})


def measure_cpu_memory(spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Peak RSS growth of the bare loop and of the trainer, each in a process forked before anything is built.

    Call it before anything else is built in this process: the forked process starts from this
    process's RSS (libraries only), and its ``ru_maxrss`` is the peak of that variant alone.
    """
    import multiprocessing

    import monai_ssl.engines  # noqa: F401  (imported before the fork: part of every variant's baseline)
    import monai_ssl.losses  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    results = {}
    for variant in ("bare", "trainer"):
        _log(f"memory: peak RSS of {variant} in a forked process")
        queue = ctx.Queue()
        proc = ctx.Process(target=_memory_child, args=(spec, variant, queue))
        proc.start()
        proc.join()  # the child puts one small dict: joining first cannot block on a full pipe
        if proc.exitcode != 0:
            raise RuntimeError(f"memory run of {variant} failed with exit code {proc.exitcode}")
        results[variant] = queue.get(timeout=30)
    return results


# --------------------------------------------------------------------------------------------- inference
def measure_inference(spec: dict[str, Any]) -> dict[str, Any]:
    """Interleaved repeats of the sliding-window inference variants; seconds per image and a check."""
    from monai.inferers import SlidingWindowInferer

    from monai_ssl.networks import SegmentationPair

    device = torch.device(spec["device"])
    torch.manual_seed(0)
    networks = build_networks(device)
    for network in networks.values():
        network.eval()
    pair = SegmentationPair(networks["cnn"], networks["transformer"]).eval()
    patch = spec["patch_size"]
    inferer = SlidingWindowInferer(roi_size=(patch, patch), sw_batch_size=4, overlap=0.25)
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator).to(device) for _ in range(spec["images"])]

    def predict(variant: str, x: torch.Tensor) -> list[torch.Tensor]:
        if variant == "bare-unet":
            return [inferer(x, networks["cnn"])]
        if variant == "bare-both":
            return [inferer(x, networks["cnn"]), inferer(x, networks["transformer"])]
        pair.output = "cnn" if variant == "pair-cnn" else "mean"
        return [inferer(x, pair)]

    def run(variant: str) -> list[float]:
        times = []
        with torch.inference_mode(), torch.autocast(device.type, enabled=spec["amp"]):
            for x in images:
                _sync(device)
                start = time.perf_counter()
                predict(variant, x)
                _sync(device)
                times.append(time.perf_counter() - start)
        return times

    with torch.inference_mode(), torch.autocast(device.type, enabled=spec["amp"]):  # warm-up and check
        bare_out = predict("bare-unet", images[0])[0]
        pair_out = predict("pair-cnn", images[0])[0]
        max_diff = float((bare_out.float() - pair_out.float()).abs().max())
        predict("pair-mean", images[0])
    raw: dict[str, list[list[float]]] = {v: [] for v in INFER_VARIANTS}
    cuda_peak = {v: 0.0 for v in INFER_VARIANTS}
    for r in range(spec["repeats"]):
        for variant in INFER_VARIANTS if r % 2 == 0 else INFER_VARIANTS[::-1]:
            _log(f"inference: repeat {r + 1}/{spec['repeats']}, {variant}")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            raw[variant].append(run(variant))
            if device.type == "cuda":
                cuda_peak[variant] = max(cuda_peak[variant], torch.cuda.max_memory_allocated(device) / 2**20)
    return {
        "raw": raw,
        "max_diff": max_diff,
        "windows": _windows_per_image(patch),
        "cuda_peak_mib": cuda_peak if device.type == "cuda" else None,
    }


def _windows_per_image(patch: int, overlap: float = 0.25) -> int:
    """Sliding windows over a ``IMAGE_SIZE`` square image (MONAI's scan: ``ceil((size - roi) / stride) + 1`` a side)."""
    import math

    stride = max(int(patch * (1 - overlap)), 1)
    per_side = 1 if patch >= IMAGE_SIZE else math.ceil((IMAGE_SIZE - patch) / stride) + 1
    return per_side**2


# --------------------------------------------------------------------------------------------- summary
def summarise_training(result: dict[str, Any], spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Median step, it/s, throughput ratio to bare, per-repeat ratios and median phases of each variant."""
    raw = result["raw"]
    bare = _median([t for run in raw["bare"] for t in run["step"]])
    images_per_step = spec["labeled_batch_size"] + spec["unlabeled_batch_size"]
    rows: dict[str, dict[str, Any]] = {}
    for variant, runs in raw.items():
        steps = [t for run in runs for t in run["step"]]
        med = _median(steps)
        rows[variant] = {
            "median": med,
            "min": min(steps),
            "max": max(steps),
            "n": len(steps),
            "it_per_s": 1.0 / med,
            "images_per_s": images_per_step / med,
            "ratio": bare / med,
            "repeat_ratios": [_median(b["step"]) / _median(r["step"]) for r, b in zip(runs, raw["bare"])],
            "parts": {k: _median([t for run in runs for t in run[k]]) for k in runs[0] if k != "step"},
        }
    return rows


def summarise_inference(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Median seconds per image, images/s and the ratio to the bare UNet of each variant."""
    raw = result["raw"]
    bare = _median([t for run in raw["bare-unet"] for t in run])
    rows = {}
    for variant, runs in raw.items():
        times = [t for run in runs for t in run]
        med = _median(times)
        rows[variant] = {"median": med, "min": min(times), "max": max(times), "n": len(times), "ratio": bare / med}
    both = rows["bare-both"]["median"]
    rows["pair-mean"]["ratio_both"] = both / rows["pair-mean"]["median"]
    return rows


# --------------------------------------------------------------------------------------------- report
TRAIN_LABELS = {
    "bare": "bare PyTorch loop",
    "trainer": "`CrossTeachingTrainer`",
    "trainer+handlers": "`CrossTeachingTrainer` + bundle's per-iteration handlers",
}
INFER_LABELS = {
    "bare-unet": "bare: inferer on the UNet",
    "pair-cnn": '`SegmentationPair(output="cnn")`',
    "bare-both": "bare: inferer on the UNet, then on the SwinUNETR",
    "pair-mean": '`SegmentationPair(output="mean")` (both networks)',
}


def build_section(
    args: argparse.Namespace,
    info: dict[str, Any],
    training: dict[str, Any] | None,
    train_rows: dict[str, dict[str, Any]] | None,
    memory: dict[str, dict[str, float]] | None,
    inference: dict[str, Any] | None,
    infer_rows: dict[str, dict[str, Any]] | None,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    elapsed: float,
    command: str,
) -> list[str]:
    """The whole Markdown section, starting with :data:`SECTION_HEADING`."""
    device = torch.device(args.device)
    patch = args.patch_size
    probes = training["probes"] if training else []
    lines = [
        SECTION_HEADING,
        "",
        "Generated by `benchmarks/bench_cross_teaching.py --write` (see `benchmarks/README.md`); re-run it rather "
        "than editing this section by hand. It replaces only this section of the page.",
        "",
        f"- Date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['ram_gib']:.1f} GiB RAM, GPU: {info['gpu'] or 'none'}",
        f"- Software: Python {info['python']}, torch {info['torch']}"
        + (f" (CUDA {info['cuda']})" if info["cuda"] else "")
        + f", MONAI {info['monai']}, Ignite {info['ignite']}, {info['torch_threads']} torch threads; {info['os']}",
        f"- Device: `{args.device}`, mixed precision: {'on' if args.amp else 'off'}"
        + (" (bfloat16 autocast on CPU)" if args.amp and device.type == "cpu" else ""),
        f"- Sizes: patches {patch}x{patch} (the bundle trains on 224x224"
        + ("; smaller here to keep the CPU run short" if patch != 224 else "")
        + f"), labeled batch {args.labeled_batch_size} + unlabeled batch {args.unlabeled_batch_size}; "
        f"{args.repeats} repeats of {args.iterations} counted steps per variant (trainer runs: after "
        f"{args.warmup} uncounted iteration(s)); inference on {args.images} images of {IMAGE_SIZE}x{IMAGE_SIZE}, "
        f"{args.repeats} repeats",
        f"- Load average (1/5/15 min) at start {load[0][0]:.2f}/{load[0][1]:.2f}/{load[0][2]:.2f}, at end "
        f"{load[1][0]:.2f}/{load[1][1]:.2f}/{load[1][2]:.2f}; whole script {elapsed:.0f} s"
        + (
            f"; contention probe (`torch.exp` of 2^17 floats, tens of µs on idle cores) before each training run: "
            f"median {_fmt_us(_median(probes))}, max {_fmt_us(max(probes))}"
            if probes
            else ""
        ),
        f"- Command: `{command}`",
        "",
    ]
    if device.type == "cpu":
        lines += [
            "GPU figures (the bundle's setting: CUDA, amp, 224x224 patches) are still to be measured: run "
            "`python benchmarks/bench_cross_teaching.py --device cuda --amp --write` on a GPU machine.",
            "",
        ]
    if training and train_rows:
        lines += _training_lines(args, training, train_rows, memory, device)
    if inference and infer_rows:
        lines += _inference_lines(args, inference, infer_rows, device)
    lines += [
        "## What is measured",
        "",
        "- Networks, as in `bundles/isic_cross_teaching/configs/train.json`: `UNet(spatial_dims=2, in_channels=3, "
        "out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)` and "
        "`SwinUNETR(spatial_dims=2, in_channels=3, out_channels=2, feature_size=24)`, random weights; one Adam each "
        "(lr 3.6e-4, weight decay 1e-5); `CrossTeachingLoss()`.",
        "- **bare loop**: random labeled images and masks and random unlabeled images already on the device; per step "
        "`zero_grad` (both), one forward of the concatenated labeled + unlabeled batch through each network, "
        "`CrossTeachingLoss` with the ramped weight, `backward`, both `Adam.step` (with a `GradScaler` under amp on "
        "CUDA). Nothing else.",
        "- **`CrossTeachingTrainer`**: the same batches given as plain lists (`train_data_loader=[labeled] * n`, "
        "`unlabeled_data_loader=[unlabeled] * n`), so no data loading is measured; a new trainer per repeat on the "
        "same networks and optimizers. Step = interval between the ends of consecutive iterations (CUDA synchronised "
        "there); the first iteration(s) of a run are not counted. `+ handlers` attaches the bundle's per-iteration "
        "handlers (`StatsHandler` epoch log, `TensorBoardStatsHandler` with `cross_teaching_scalars` writing to a "
        "temporary folder, `ProgressDisplay` writing to `/dev/null`); the LR schedulers, validation and checkpoints "
        "act at epoch end and are left out.",
        "- Ratio = throughput of the variant / throughput of the bare loop (median bare step / median variant step), "
        "variants alternating repeat by repeat in one process so that a noisy machine slows all of them.",
        "- **Inference**: `SlidingWindowInferer(roi_size=(patch, patch), sw_batch_size=4, overlap=0.25)` (the bundle's "
        f"validation inferer) on random {IMAGE_SIZE}x{IMAGE_SIZE} images, one at a time, networks in eval mode, "
        "`torch.inference_mode()` and `torch.autocast(enabled=amp)`; seconds per image from the call to the result "
        "(CUDA synchronised).",
        "",
    ]
    return lines


def _training_lines(
    args: argparse.Namespace,
    training: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    memory: dict[str, dict[str, float]] | None,
    device: torch.device,
) -> list[str]:
    """Markdown for the training measurement: summary table, phases, memory, notes."""
    params = training["parameters"]
    cuda_peak = training["cuda_peak_mib"]
    mem_label = "peak GPU memory (`max_memory_allocated`)" if device.type == "cuda" else "peak RSS growth"
    lines = [
        "## Training: `CrossTeachingTrainer` against a bare loop",
        "",
        f"Parameters: UNet {params['cnn'] / 1e6:.2f} M, SwinUNETR {params['transformer'] / 1e6:.2f} M. "
        f"Target: trainer throughput >= {TARGET_THROUGHPUT_RATIO:.2f} x bare throughput.",
        "",
        f"| variant | median step | min - max | n | it/s | images/s | trainer / bare (throughput) | {mem_label} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        if cuda_peak is not None:
            peak = f"{cuda_peak[variant]:.0f} MiB"
        elif memory and variant in memory:
            m = memory[variant]
            peak = f"{m['peak_rss_mib'] - m['rss_before_mib']:.0f} MiB"
        else:
            peak = "-"
        ratio = "1 (reference)" if variant == "bare" else f"**{row['ratio']:.3f}**"
        lines.append(
            f"| {TRAIN_LABELS[variant]} | {_fmt_s(row['median'])} | {_fmt_s(row['min'])} - {_fmt_s(row['max'])} | "
            f"{row['n']} | {row['it_per_s']:.3f} | {row['images_per_s']:.2f} | {ratio} | {peak} |"
        )
    lines.append("")
    for variant, row in rows.items():
        if variant == "bare":
            continue
        met = "met" if row["ratio"] >= TARGET_THROUGHPUT_RATIO else "NOT met"
        rr = ", ".join(f"{r:.3f}" for r in row["repeat_ratios"])
        lines.append(
            f"- {TRAIN_LABELS[variant]}: {row['ratio']:.3f} x the bare throughput; target >= "
            f"{TARGET_THROUGHPUT_RATIO:.2f}: **{met}**. Per-repeat ratios: {rr}."
        )
    if memory and cuda_peak is None:
        b, t = memory["bare"], memory["trainer"]
        lines += [
            f"- Peak RSS growth (CPU, `resource.getrusage(RUSAGE_SELF).ru_maxrss` minus `VmRSS` before the first step, "
            f"in a process forked before anything was built, running only that variant for {args.warmup} + "
            f"{args.memory_steps} steps): bare {b['peak_rss_mib'] - b['rss_before_mib']:.0f} MiB (peak "
            f"{b['peak_rss_mib']:.0f} MiB), trainer {t['peak_rss_mib'] - t['rss_before_mib']:.0f} MiB (peak "
            f"{t['peak_rss_mib']:.0f} MiB). One run per variant: differences of a few percent are within the "
            "run-to-run variation of the allocator.",
        ]
    phase_keys = ("data", "forward", "loss", "backward", "optimizer", "output", "handlers", "other")
    lines += [
        "",
        "Where a step goes (medians of the counted steps, host-side times"
        + ("; on CUDA the phases are launch times, only `step` includes the GPU work" if device.type == "cuda" else "")
        + "): `forward` = everything from the start of the step to the end of the two forward passes (trainer: batch "
        "preparation, `train()`, `zero_grad`, ramp weight, concatenation); `backward` includes the trainer's NaN "
        "check of the loss; `optimizer` = both Adam steps (and, under amp, the scaler); `output` = the trainer's "
        "output dict and the release of the step's tensors (logits and their autograd graph) when `_iteration` "
        "returns, for the bare loop a `del` of the same tensors at the end of its step; `other` = engine events "
        "and bookkeeping.",
        "",
        "| variant | step | " + " | ".join(phase_keys) + " | step - bare step |",
        "|---|---|" + "---|" * len(phase_keys) + "---|",
    ]
    bare = rows["bare"]["median"]
    for variant, row in rows.items():
        parts = [_fmt_s(row["parts"][k]) if k in row["parts"] else "-" for k in phase_keys]
        diff = "-" if variant == "bare" else _fmt_s(row["median"] - bare)
        lines.append(f"| {TRAIN_LABELS[variant]} | {_fmt_s(row['median'])} | " + " | ".join(parts) + f" | {diff} |")
    spread = (rows["bare"]["max"] - rows["bare"]["min"]) / bare * 100
    extra = {k: rows["trainer"]["parts"].get(k, 0.0) for k in ("data", "output", "handlers", "other")}
    lines += [
        "",
        f"- Noise: the bare loop's own steps range over {spread:.0f}% of their median "
        f"({_fmt_s(rows['bare']['min'])} - {_fmt_s(rows['bare']['max'])}); ratios within that of 1 are not a "
        "measurable difference.",
        "- Outside the model phases (data from the list, output dict and release of the step's tensors, "
        f"engine bookkeeping) the trainer spends {_fmt_s(sum(extra.values()))} per step "
        f"({sum(extra.values()) / bare * 100:.2f}% of the bare step), measured directly, against "
        f"{_fmt_s(rows['bare']['parts']['output'])} for the bare loop's release of the same tensors; with the "
        "bundle's handlers: "
        f"{_fmt_s(sum(rows['trainer+handlers']['parts'].get(k, 0.0) for k in extra))}, of which the handlers "
        f"{_fmt_s(rows['trainer+handlers']['parts']['handlers'])}.",
        "",
        "The trainer's own extra work per step, timed call by call (medians; CUDA synchronised around each call):",
        "",
        "| piece | when | per call | % of the bare step |",
        "|---|---|---|---|",
    ]
    when = {
        "train()": "every iteration, both networks (`_iteration`)",
        "check_finite": "every iteration (NaN guard on the loss, one host sync)",
        "gradients_finite": "every step with amp, incl. CPU where MONAI's `GradScaler` is disabled "
        "(`scaled_optimizers_step` with 2 optimizers: norm of all gradients, one host sync)",
        "cross_teaching_scalars": "every iteration with the bundle's `TensorBoardStatsHandler` "
        "(`float()` of 5 tensors)",
    }
    for name, seconds in training["extras"].items():
        lines.append(f"| `{name}` | {when[name]} | {_fmt_us(seconds)} | {seconds / bare * 100:.2f}% |")
    lines.append("")
    return lines


def _inference_lines(
    args: argparse.Namespace, inference: dict[str, Any], rows: dict[str, dict[str, Any]], device: torch.device
) -> list[str]:
    """Markdown for the inference measurement."""
    cuda_peak = inference["cuda_peak_mib"]
    lines = [
        "## Inference: sliding window over 480x480 images",
        "",
        f"`SlidingWindowInferer(roi_size=({args.patch_size}, {args.patch_size}), sw_batch_size=4, overlap=0.25)`: "
        f"{inference['windows']} windows per image. `SegmentationPair(output=\"cnn\")` against the bare UNet differs "
        f"by at most {inference['max_diff']:.1e} in the logits.",
        "",
        "| variant | per image | min - max | n | images/s | / bare UNet (throughput) |"
        + (" peak GPU memory |" if cuda_peak else ""),
        "|---|---|---|---|---|---|" + ("---|" if cuda_peak else ""),
    ]
    for variant, row in rows.items():
        ratio = "1 (reference)" if variant == "bare-unet" else f"{row['ratio']:.3f}"
        lines.append(
            f"| {INFER_LABELS[variant]} | {_fmt_s(row['median'])} | {_fmt_s(row['min'])} - {_fmt_s(row['max'])} | "
            f"{row['n']} | {1 / row['median']:.2f} | {ratio} |"
            + (f" {cuda_peak[variant]:.0f} MiB |" if cuda_peak else "")
        )
    bare = rows["bare-unet"]
    spread = (bare["max"] - bare["min"]) / bare["median"] * 100
    lines += [
        "",
        f"- Noise: the bare UNet's own times per image range over {spread:.0f}% of their median "
        f"({_fmt_s(bare['min'])} - {_fmt_s(bare['max'])}).",
        f"- `SegmentationPair(output=\"cnn\")` runs at {rows['pair-cnn']['ratio']:.3f} x the bare UNet's throughput "
        "(the wrapper adds one attribute lookup per window).",
        f"- `output=\"mean\"` (both networks in one sliding window, softmax averaged per window) runs at "
        f"{rows['pair-mean']['ratio_both']:.3f} x the throughput of two bare sliding-window passes, one per network, "
        f"and at {rows['pair-mean']['ratio']:.3f} x the bare UNet's.",
        "",
    ]
    return lines


def write_section(path: Path, lines: list[str]) -> None:
    """Replace this benchmark's section of ``path`` (up to the next top-level heading) or append it at the end."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    page = text.split("\n")
    start = next((i for i, line in enumerate(page) if line.rstrip() == SECTION_HEADING), None)
    if start is None:
        before, after = page, []
    else:
        end, fenced = len(page), False
        for i in range(start + 1, len(page)):
            if page[i].lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and page[i].startswith("# "):
                end = i
                break
        before, after = page[:start], page[end:]
    head = "\n".join(before).rstrip("\n")
    tail = "\n".join(after).strip("\n")
    body = "\n".join(lines).rstrip("\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (head + "\n\n" if head else "") + body + "\n" + ("\n" + tail + "\n" if tail else "")
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the per-device defaults of ``DEFAULTS``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast (and GradScaler on CUDA) in every variant")
    p.add_argument("--patch_size", "--patch-size", type=int, help="training patch and inference ROI (cpu 96, cuda 224)")
    p.add_argument(
        "--labeled_batch_size", "--labeled-batch-size", type=int, default=8, help="labeled images per step (8)"
    )
    p.add_argument(
        "--unlabeled_batch_size", "--unlabeled-batch-size", type=int, default=8, help="unlabeled images per step (8)"
    )
    p.add_argument("--iterations", type=int, help="counted training steps per variant and repeat (cpu 3, cuda 20)")
    p.add_argument("--warmup", type=int, help="uncounted iterations at the start of each trainer run (cpu 1, cuda 3)")
    p.add_argument("--repeats", type=int, help="interleaved repeats of every variant (cpu 3, cuda 5)")
    p.add_argument("--images", type=int, help="480x480 images per inference run (cpu 2, cuda 16)")
    p.add_argument("--memory_steps", "--memory-steps", type=int, help="steps of each CPU peak-memory run (cpu 1)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--no_memory", "--no-memory", action="store_true", help="skip the forked CPU peak-memory runs")
    p.add_argument("--no_training", "--no-training", action="store_true", help="skip the training measurement")
    p.add_argument("--no_inference", "--no-inference", action="store_true", help="skip the inference measurement")
    p.add_argument("--write", action="store_true", help="replace (or append) this benchmark's section of --out")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="Markdown page for --write")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if min(args.iterations, args.warmup, args.repeats, args.images, args.memory_steps) < 1:
        p.error("--iterations, --warmup, --repeats, --images and --memory_steps must be >= 1")
    if args.patch_size % 32 or args.patch_size < 64:
        p.error("--patch_size must be a multiple of 32 (SwinUNETR's downsampling), at least 64")
    if min(args.labeled_batch_size, args.unlabeled_batch_size) < 1:
        p.error("the batch sizes must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurements, print the section and, with ``--write``, update the page."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_start = os.getloadavg()
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], os.getcwd()), *sys.argv[1:]])
    device = torch.device(args.device)
    info = machine_info(device)
    spec = {k: getattr(args, k) for k in ("device", "amp", "patch_size", "labeled_batch_size", "unlabeled_batch_size")}
    spec.update({k: getattr(args, k) for k in ("iterations", "warmup", "repeats", "images", "memory_steps")})
    memory = training = train_rows = inference = infer_rows = None
    if not args.no_training and device.type == "cpu" and not args.no_memory:
        memory = measure_cpu_memory(spec)  # first: the forks must start from a process that built nothing
    if not args.no_training:
        training = measure_training(spec)
        train_rows = summarise_training(training, spec)
        for variant, row in train_rows.items():
            _log(f"training {variant}: median step {_fmt_s(row['median'])}, {row['it_per_s']:.3f} it/s, "
                 f"ratio {row['ratio']:.3f}")
    if not args.no_inference:
        inference = measure_inference(spec)
        infer_rows = summarise_inference(inference)
        for variant, row in infer_rows.items():
            _log(f"inference {variant}: {_fmt_s(row['median'])} per image, ratio {row['ratio']:.3f}")
    elapsed = time.perf_counter() - started
    lines = build_section(
        args, info, training, train_rows, memory, inference, infer_rows, (load_start, os.getloadavg()), elapsed,
        command,
    )
    print("\n".join(lines))
    if args.write:
        write_section(args.out, lines)
        _log(f"updated {args.out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
