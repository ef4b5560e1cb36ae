"""BYOL pre-training throughput: the bare step against ``BYOLTrainer`` with CPU views and with GPU views.

Two models with their bundle's network, views and trainer settings: ``byol2d`` (``BYOL(resnet18_encoder(pool=True))``
on grayscale JPEGs, ``oct_byol_pseudolabel``) and ``byolmed2d`` (``BYOL(SliceEncoder(resnet18_encoder(pool=False)))``
on MRNet volumes). Three variants each, interleaved round by round on one network and optimizer: ``bare`` (random
views on the device, forward, loss, backward, Adam, momentum update), ``cpu-views`` (``BYOLTrainer`` over a
``DataLoader`` of the files with the bundle's ``train#preprocessing`` for views in the workers and ``prepare_views``) and
``gpu-views`` (the same recipe for views on the device, and ``DeviceViews()``). Targets: GPU views >= 90% of the bare step's throughput for
both models; byol2d >= 3,000 images/s end to end on one H100. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import harness as H

SECTION = "byol_pretraining"
TARGET_RATIO = 0.90  # trainer with GPU views / bare step, throughput
TARGET_IMAGES_PER_S = 3000.0  # byol2d end to end on one H100
VARIANTS = ("bare", "cpu-views", "gpu-views")
LABELS = {"bare": "bare step", "cpu-views": "`BYOLTrainer`, CPU views", "gpu-views": "`BYOLTrainer`, GPU views"}
GPU_COMMAND = "python benchmarks/bench_byol_pretraining.py --device cuda --amp --write"

# per device: the GPU sizes are the bundles'; the CPU ones keep the whole run to a few minutes on 2 cores
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"steps": 30, "warmup": 5, "rounds": 3, "image_size": 224, "working_size": 256, "batch_2d": 256,
             "num_images": 3072, "image_shape": (496, 512), "batch_volumes": 8, "num_slices": 16, "num_volumes": 32},
    "cpu": {"steps": 6, "warmup": 2, "rounds": 3, "image_size": 64, "working_size": 72, "batch_2d": 16,
            "num_images": 64, "image_shape": (128, 128), "batch_volumes": 2, "num_slices": 4, "num_volumes": 4},
}


@dataclass
class Run:
    """One timed run of a variant: the counted steps."""

    seconds: float  # wall time of the counted steps, device synchronised at both ends
    steps: list[float]  # time of each counted step
    data_wait: list[float]  # time each counted step waited for its batch (trainer only)
    prepare: list[float]  # host time of each counted step's prepare_batch (trainer only)
    peak_mib: float | None  # peak allocated GPU memory


# --------------------------------------------------------------------------------------------- data and network
def write_data(model: str, args: argparse.Namespace, root: str) -> list[dict[str, str]]:
    """Write the model's files under ``root`` and list them as items ``{"image": path}``."""
    from monai_ssl.data import classification_datalist, make_mrnet_demo, make_oct_demo, mrnet_datalist

    if model == "byol2d":
        h, w = args.image_shape
        demo = make_oct_demo(os.path.join(root, "oct"), n_train_per_class=math.ceil(args.num_images / 4),
                             n_test_per_class=1, height=(h, h), width=(w, w))
        items = classification_datalist(demo, split="train")[0][: args.num_images]
    else:
        demo = make_mrnet_demo(os.path.join(root, "mrnet"), n_train=args.num_volumes, n_valid=2, planes=("sagittal",))
        items = mrnet_datalist(demo, split="train", plane="sagittal")
    return [{"image": item["image"]} for item in items]


def view_transforms(model: str, on_device: bool, args: argparse.Namespace) -> Any:
    """The bundle's pre-training transforms (``train#preprocessing``): the recipe its ``train.json`` names."""
    from monai_ssl.recipes import image_view_transforms, volume_view_transforms

    if model == "byol2d":
        return image_view_transforms(on_device, in_channels=1, image_size=args.image_size, working_size=args.working_size)
    return volume_view_transforms(on_device, num_slices=args.num_slices, image_size=args.image_size)


def build_network(model: str, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """The bundle's BYOL network (``network_def``: hidden 4096, projection 256), placed as the bundle places it."""
    from monai_ssl.networks import place_network
    from monai_ssl.recipes import byol_network

    encoder = "resnet18" if model == "byol2d" else "slice_resnet18"
    return place_network(byol_network(encoder, in_channels=1), device, channels_last=channels_last)


# --------------------------------------------------------------------------------------------- the variants
def run_bare(net: torch.nn.Module, opt: torch.optim.Optimizer, model: str, args: argparse.Namespace) -> Run:
    """``warmup`` uncounted and ``steps`` counted bare BYOL steps on random views already on the device."""
    from monai_ssl.losses import BYOLLoss

    device, loss_fn = args.device, BYOLLoss()
    shape = (args.batch_2d, 1) if model == "byol2d" else (args.batch_volumes, 1, args.num_slices)
    views = [torch.rand(*shape, args.image_size, args.image_size, device=device) for _ in range(2)]
    if args.channels_last and views[0].ndim == 4:
        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    net.train()

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            out = net(*views)
            loss = loss_fn(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
        loss.backward()
        opt.step()
        net.update_target(0.99)

    for _ in range(args.warmup):
        step()
    H.reset_peak_memory(device)
    times = [H.timed(step, device)[0] for _ in range(args.steps)]
    return Run(sum(times), times, [], [], H.peak_memory_mib(device))


def bundle_handlers(log_dir: str, devnull: Any, sync_interval: int) -> tuple[list[Any], Any]:
    """The bundle's per-iteration handlers: collapse monitor, epoch log, TensorBoard scalars, progress bar."""
    from monai.handlers import StatsHandler, TensorBoardStatsHandler, from_engine
    from torch.utils.tensorboard import SummaryWriter

    from monai_ssl.engines import byol_scalars
    from monai_ssl.handlers import CollapseMonitor, ProgressDisplay

    writer = SummaryWriter(log_dir)
    progress = ProgressDisplay(desc="BYOL pre-training", update_every=sync_interval)
    progress.bar.tqdm_kwargs["file"] = devnull
    return [
        CollapseMonitor(threshold=0.1),
        StatsHandler(tag_name="byol_loss", iteration_log=False, output_transform=from_engine(["loss"], first=True)),
        TensorBoardStatsHandler(summary_writer=writer, iteration_log=sync_interval, output_transform=byol_scalars),
        progress,
    ], writer


def run_trainer(
    net: torch.nn.Module, opt: torch.optim.Optimizer, loader: Any, prepare_batch: Callable, args: argparse.Namespace
) -> Run:
    """One ``BYOLTrainer`` epoch of ``warmup + steps`` iterations over ``loader``, with the bundle's settings."""

    from monai_ssl.engines import BYOLTrainer

    device, total = args.device, args.warmup + args.steps
    cuda = device.type == "cuda"
    sync_interval = 20 if cuda else 1
    prepare: list[float] = []

    def timed_prepare(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        views = prepare_batch(*a, **k)
        prepare.append(time.perf_counter() - start)
        return views

    with tempfile.TemporaryDirectory(prefix="bench_byol_tb_") as log_dir, open(os.devnull, "w") as devnull:
        handlers, writer = bundle_handlers(log_dir, devnull, sync_interval)
        trainer = BYOLTrainer(
            device=device, max_epochs=1, train_data_loader=loader, network=net, optimizer=opt, epoch_length=total,
            prepare_batch=timed_prepare, train_handlers=handlers, amp=args.amp, amp_kwargs={"dtype": torch.bfloat16},
            non_blocking=cuda, channels_last=args.channels_last, finite_check_interval=sync_interval,
        )

        loader_waits = H.LoaderWaits(trainer)

        clock = H.IterationClock(trainer, device, args.warmup, total)  # attached last: after every handler
        trainer.run()
        writer.close()
    wait = loader_waits.counted(args.warmup, total)
    return Run(clock.elapsed(), clock.steps(), wait, prepare[args.warmup :], H.peak_memory_mib(device))


def measure_model(model: str, args: argparse.Namespace, root: str, session: H.Session) -> dict[str, list[Run]]:
    """Interleaved rounds of the three variants of ``model`` on one network and optimizer."""
    from monai.data import DataLoader, Dataset

    from monai_ssl.engines import DeviceViews, prepare_views

    torch.manual_seed(0)
    net = build_network(model, args.device, args.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3 if model == "byol2d" else 3e-4, weight_decay=1e-6)
    files = write_data(model, args, root)
    batch = args.batch_2d if model == "byol2d" else args.batch_volumes
    # one epoch = one timed run: the files, listed as often as it takes, fill warmup + steps batches
    items = [files[i % len(files)] for i in range((args.warmup + args.steps) * batch)]

    def loader(on_device: bool) -> DataLoader:
        return DataLoader(
            Dataset(items, transform=view_transforms(model, on_device, args)), batch_size=batch, shuffle=True,
            drop_last=True, num_workers=args.num_workers, pin_memory=args.device.type == "cuda",
            persistent_workers=args.num_workers > 0,
        )

    cpu_loader, gpu_loader, device_views = loader(False), loader(True), DeviceViews()
    variants = {
        "bare": lambda: run_bare(net, opt, model, args),
        "cpu-views": lambda: run_trainer(net, opt, cpu_loader, prepare_views, args),
        "gpu-views": lambda: run_trainer(net, opt, gpu_loader, device_views, args),
    }
    H.log(f"{model}: {len(files)} files, {batch} per batch, {args.rounds} rounds of {args.warmup} + {args.steps} steps")
    return H.interleave(variants, args.rounds, before_each=session.probe)


# --------------------------------------------------------------------------------------------- the report
def summarise(model: str, runs: dict[str, list[Run]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per variant: throughput (median over rounds), ratio to the bare step, step and data-wait statistics."""
    images = args.batch_2d if model == "byol2d" else args.batch_volumes  # images or volumes per step
    rates = {v: [images * args.steps / r.seconds for r in rs] for v, rs in runs.items()}
    bare = H.Stats.of(rates["bare"]).median
    rows = {}
    for variant, rs in runs.items():
        rate = H.Stats.of(rates[variant]).median
        peaks = [r.peak_mib for r in rs if r.peak_mib is not None]
        rows[variant] = {
            "rate": rate, "ratio": rate / bare, "step": H.Stats.of(t for r in rs for t in r.steps),
            "round_ratios": [a / b for a, b in zip(rates[variant], rates["bare"])],
            "wait": H.Stats.of(t for r in rs for t in r.data_wait).median if rs[0].data_wait else None,
            "prepare": H.Stats.of(t for r in rs for t in r.prepare).median if rs[0].prepare else None,
            "peak": f"{max(peaks):,.0f} MiB" if peaks else "-",
        }
    return rows


def model_lines(model: str, rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The section of one model: what runs, and its table."""
    volumes = model == "byolmed2d"
    size = f"{args.image_size}x{args.image_size}"
    if volumes:
        title = "## byolmed2d: `BYOL(SliceEncoder(resnet18_encoder(pool=False)))`"
        what = (f"{args.batch_volumes} volumes x {args.num_slices} slices x {size} per view; data: {args.num_volumes} "
                "synthetic MRNet volumes (`make_mrnet_demo`, uint8 256x256, 17-22 slices) listed by `mrnet_datalist`.")
        head = ["volumes/s", "slices/s"]
    else:
        h, w = args.image_shape
        title = "## byol2d: `BYOL(resnet18_encoder(pool=True))`"
        what = (f"{args.batch_2d} images x {size} per view; data: {args.num_images} grayscale JPEGs of {h}x{w} "
                f"(`make_oct_demo`); GPU views: resized to {args.working_size}x{args.working_size} (area) in the "
                "workers.")
        head = ["images/s"]
    table = []
    for variant, row in rows.items():
        rates = [H.fmt_rate(row["rate"])] + ([H.fmt_rate(row["rate"] * args.num_slices)] if volumes else [])
        s = row["step"]
        table.append([LABELS[variant], *rates, "1 (reference)" if variant == "bare" else f"**{row['ratio']:.3f}**",
                      H.fmt_time(s.median), f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n,
                      *("-" if row[k] is None else H.fmt_time(row[k]) for k in ("wait", "prepare")), row["peak"]])
    lines = [title, "", what, ""]
    lines += H.table([*("variant", *head), "/ bare", "median step", "min - max", "n", "data wait per step",
                      "`prepare_batch` per step", "peak GPU memory"], table)
    lines.append("")
    for variant in VARIANTS[1:]:
        rr = ", ".join(f"{r:.3f}" for r in rows[variant]["round_ratios"])
        lines.append(f"- {LABELS[variant]}: {rows[variant]['ratio']:.3f} x the bare throughput (per round: {rr}).")
    lines.append(f"- Noise: the bare steps range over {rows['bare']['step'].spread:.0%} of their median.")
    return lines + [""]


def summary_lines(all_rows: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace) -> list[str]:
    """The targets and whether each is met."""
    cuda = args.device.type == "cuda"
    rows = []
    for model, r in all_rows.items():
        gpu = r["gpu-views"]
        rows.append([model, f"trainer with GPU views >= {TARGET_RATIO:.0%} of the bare step's throughput",
                     f"{gpu['ratio']:.3f}", H.verdict(gpu["ratio"] >= TARGET_RATIO)])
        if model == "byol2d":
            met = H.verdict(gpu["rate"] >= TARGET_IMAGES_PER_S) if cuda else "not measured (applies to one H100)"
            rows.append([model, f">= {TARGET_IMAGES_PER_S:,.0f} images/s end to end (trainer, GPU views)",
                         f"{H.fmt_rate(gpu['rate'])} images/s", met])
    return ["## Summary", ""] + H.table(["model", "target", "measured", "met?"], rows) + [""]


NOTES = [
    "## What is measured",
    "",
    "- **bare step**: random views already on the device; `zero_grad`, forward of both views, `BYOLLoss`, `backward`, "
    "`Adam.step`, `update_target(0.99)`, the device synchronised around each step. With `--amp`: bf16 autocast (no "
    "gradient scaler), `place_network(channels_last=True)`, 2D views in `channels_last`.",
    "- **trainer**: `BYOLTrainer` with the bundle's settings (bf16 `amp_kwargs`, `channels_last` with `--amp`; "
    "`non_blocking`, `finite_check_interval=20` on CUDA, 1 on CPU), a `DataLoader` over the files (shuffle, drop_last, "
    "`pin_memory` on CUDA, persistent workers) and the bundle's per-iteration handlers (`CollapseMonitor`, "
    "`StatsHandler`, `TensorBoardStatsHandler` to a temporary folder, `ProgressDisplay` to `/dev/null`; the "
    "once-per-epoch ones are left out). **CPU views**: `train#preprocessing` (views in the workers) + `prepare_views`; "
    "**GPU views**: `train#preprocessing` (view parameters in the workers) + `DeviceViews()`.",
    "- A trainer run is one epoch of warm-up + counted iterations (the files listed as often as needed), timed from "
    "the `ITERATION_COMPLETED` ending the warm-up to the last one (device synchronised at both): data waits count. "
    "`data wait`: `GET_BATCH_STARTED` to `GET_BATCH_COMPLETED`; `prepare_batch`: its host time (the copy; with GPU "
    "views also the scaling and the views of the batch, on CUDA the time to queue them).",
    "- Throughput = counted steps x batch / time, median over rounds; `/ bare` = ratio to the bare step's. Variants "
    "alternate their order round by round (`benchmarks/harness.py`).",
    "",
]


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--model", choices=("byol2d", "byolmed2d", "both"), default="both")
    p.add_argument("--num-workers", type=int, help="loader workers (default: monai_ssl.utils.default_num_workers())")
    args = H.parse(p, argv, DEFAULTS)
    if args.num_workers is None:
        from monai_ssl.utils import default_num_workers

        args.num_workers = default_num_workers()
    if min(args.warmup, args.steps, args.rounds) < 1:
        p.error("--warmup, --steps and --rounds must be >= 1")
    args.channels_last = args.amp
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure, print the page section and, with ``--write``, put it into the page."""
    args = parse_args(argv)
    session = H.Session(args.device, "bf16 autocast, channels_last" if args.amp else "off")
    models = ("byol2d", "byolmed2d") if args.model == "both" else (args.model,)
    all_rows = {}
    with tempfile.TemporaryDirectory(prefix="bench_byol_") as root:
        for model in models:
            all_rows[model] = summarise(model, measure_model(model, args, root, session), args)
            for variant, row in all_rows[model].items():
                H.log(f"{model} {variant}: {H.fmt_rate(row['rate'])} per s, ratio {row['ratio']:.3f}")
    sizes = (f"{args.rounds} rounds x ({args.warmup} warm-up + {args.steps} counted steps) per variant; "
             f"loader workers: {args.num_workers}")
    lines = session.header("BYOL pre-training benchmark", sizes, GPU_COMMAND) + summary_lines(all_rows, args)
    for model in models:
        lines += model_lines(model, all_rows[model], args)
    lines += NOTES
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)


if __name__ == "__main__":
    main()
