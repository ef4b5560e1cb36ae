"""DINO's multi-crop views made on the training device against the same views made per image in the loader.

DINO (Caron et al. 2021, Section 3.1 "multi-crop") trains on 2 global crops and several local crops of every image.
Two ways to make them, timed in one run on the same images: **CPU views**, ``MultiCropViewsd`` per image in the loader
(``ScaleIntensityd`` then the crops, blur, colour and solarization of every view), the trainer's ``prepare_batch`` only
moving the views; **device views**, ``MultiCropViewParamsd`` per image in the loader (the same random draws, no pixels)
and ``MultiCropDeviceViews`` making every view of the batch on the device. Measured: images per second of the view
making alone (no network), and of a whole DINO training step (``SelfSupervisedTrainer`` with ``DINOMethod`` fed by a
``DataLoader`` either way) against the bare step on views already on the device, for a ResNet and a ViT backbone (the
networks of ``bench_ssl_methods.py``). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import bench_ssl_methods as S
import harness as H

SECTION = "multi_crop_views"
GPU_COMMAND = "python benchmarks/bench_multi_crop_views.py --device cuda --amp --write"
BACKBONES = {"resnet": "dino-resnet", "vit": "dino-vit"}  # --backbones -> the case of bench_ssl_methods.py
VIEW_VARIANTS = ("cpu", "device")
STEP_VARIANTS = ("bare", "cpu-views", "device-views")
LABELS = {
    "cpu": "CPU views: `MultiCropViewsd` per image",
    "device": "device views: `MultiCropViewParamsd` per image + `MultiCropDeviceViews` per batch",
    "bare": "bare step (views already on the device)",
    "cpu-views": "trainer, CPU views (`MultiCropViewsd` in the loader)",
    "device-views": "trainer, device views (`MultiCropDeviceViews`)",
}

# per device: the GPU sizes are DINO's (2 x 224 + 6 x 96 crops of 256x256 images, ResNet-50 and ViT-S/16, batch 64);
# the CPU ones keep the whole run under 3 minutes on 2 cores.
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"steps": 20, "warmup": 5, "rounds": 3, "batch": 64, "view_batches": 4, "num_images": 512,
             "source_size": 256, "in_channels": 3, "global_size": 224, "local_size": 96, "local_views": 6,
             "cnn_depth": 50, "small_images": 0, "patch_size": 16, "dino_vit_hidden": 384, "dino_vit_heads": 6,
             "vit_layers": 12, "dino_out": 65536},
    "cpu": {"steps": 4, "warmup": 1, "rounds": 3, "batch": 8, "view_batches": 4, "num_images": 64,
            "source_size": 64, "in_channels": 3, "global_size": 32, "local_size": 16, "local_views": 6,
            "cnn_depth": 18, "small_images": 1, "patch_size": 8, "dino_vit_hidden": 192, "dino_vit_heads": 3,
            "vit_layers": 4, "dino_out": 4096},
}


@dataclass
class ViewRun:
    """One timed run of a view-making variant: per batch, the host part and the part that yields device views."""

    host: list[float]  # per image transforms in the loader's place, and the collation
    prepare: list[float]  # prepare_batch: copy to the device (and, for device views, the views), synchronised
    shapes: list[tuple[int, ...]]  # the shapes of the views of the last batch


@dataclass
class StepRun:
    """One timed run of a training-step variant: the counted steps."""

    seconds: float
    steps: list[float]
    data_wait: list[float]  # per counted step, waiting for the loader (trainer only)
    prepare: list[float]  # per counted step, host time of prepare_batch (trainer only)


# --------------------------------------------------------------------------------------------- data and views
def source_images(args: argparse.Namespace) -> list[torch.Tensor]:
    """``--num-images`` decoded images ``(C, S, S)`` uint8, as the loader holds them after reading and resizing."""
    g = torch.Generator().manual_seed(0)
    shape = (args.in_channels, args.source_size, args.source_size)
    return [torch.randint(0, 256, shape, dtype=torch.uint8, generator=g) for _ in range(args.num_images)]


def view_transform(on_device: bool, args: argparse.Namespace) -> Any:
    """The loader's transform: CPU views (scale to [0, 1], ``MultiCropViewsd``) or the device views' parameters."""
    from monai.transforms import Compose, ScaleIntensityd

    from monai_ssl.transforms import MultiCropViewParamsd, MultiCropViewsd

    crops = {"global_views": 2, "global_size": args.global_size, "local_views": args.local_views,
             "local_size": args.local_size}
    if on_device:
        return Compose([MultiCropViewParamsd(keys="image", **crops)]).set_random_state(0)
    return Compose([ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                    MultiCropViewsd(keys="image", **crops)]).set_random_state(0)


def view_keys(args: argparse.Namespace) -> tuple[str, ...]:
    """``view1 .. viewN``, the two global views first."""
    from monai_ssl.transforms import multi_crop_view_keys

    return multi_crop_view_keys(2, args.local_views)


def prepare_fn(on_device: bool) -> Callable[..., list[torch.Tensor]]:
    """The trainer's ``prepare_batch`` of each path: move the views, or make them on the device."""
    from monai_ssl.engines import MultiCropDeviceViews, prepare_view_list

    return MultiCropDeviceViews() if on_device else prepare_view_list


def run_views(on_device: bool, images: list[torch.Tensor], args: argparse.Namespace) -> ViewRun:
    """Make the views of ``--view-batches`` batches one way, timing the host part and ``prepare_batch`` apart."""
    from monai.data import list_data_collate

    transform, prepare, keys = view_transform(on_device, args), prepare_fn(on_device), view_keys(args)
    host, device_part, views = [], [], []
    for b in range(args.view_batches):
        batch_images = [images[(b * args.batch + i) % len(images)] for i in range(args.batch)]
        start = time.perf_counter()
        batch = list_data_collate([transform({"image": img}) for img in batch_images])
        host.append(time.perf_counter() - start)
        seconds, views = H.timed(lambda: prepare(batch, args.device, False, view_keys=keys), args.device)
        device_part.append(seconds)
    return ViewRun(host, device_part, [tuple(v.shape) for v in views])


# --------------------------------------------------------------------------------------------- training steps
def run_bare(case: Any, args: argparse.Namespace) -> StepRun:
    """The bare DINO step of ``bench_ssl_methods.py`` on random views already on the device."""
    run = S.run_bare(case, args)
    return StepRun(run.seconds, run.steps, [], [])


def run_trainer(case: Any, loader: Any, prepare_batch: Callable, args: argparse.Namespace) -> StepRun:
    """One ``SelfSupervisedTrainer`` epoch of ``warmup + steps`` iterations over ``loader``; waits, prepares timed."""

    from monai_ssl.engines import SelfSupervisedTrainer

    device, total = args.device, args.warmup + args.steps
    cuda = device.type == "cuda"
    prepared: list[float] = []

    def timed_prepare(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        views = prepare_batch(*a, **k)
        prepared.append(time.perf_counter() - start)
        return views

    trainer = SelfSupervisedTrainer(
        device=device, max_epochs=1, train_data_loader=loader, method=case.method, network=case.network,
        optimizer=case.optimizers, epoch_length=total, prepare_batch=timed_prepare, amp=args.amp,
        amp_kwargs={"dtype": torch.bfloat16}, non_blocking=cuda, finite_check_interval=20 if cuda else 1,
    )

    loader_waits = H.LoaderWaits(trainer)

    clock = H.IterationClock(trainer, device, args.warmup, total)  # attached last: after every handler
    trainer.run()
    wait = loader_waits.counted(args.warmup, total)
    return StepRun(clock.elapsed(), clock.steps(), wait, prepared[args.warmup :])


def measure_steps(backbone: str, images: list[torch.Tensor], args: argparse.Namespace,
                  session: H.Session) -> tuple[Any, dict[str, list[StepRun]]]:
    """Interleaved rounds of the bare step and the trainer fed either way, on one DINO network and optimizer."""
    from monai.data import DataLoader, Dataset

    case = S.build_case(BACKBONES[backbone], args)
    items = [{"image": images[i % len(images)]} for i in range((args.warmup + args.steps) * args.batch)]

    def loader(on_device: bool) -> DataLoader:
        return DataLoader(Dataset(items, transform=view_transform(on_device, args)), batch_size=args.batch,
                          shuffle=True, drop_last=True, num_workers=args.num_workers,
                          pin_memory=args.device.type == "cuda", persistent_workers=args.num_workers > 0)

    cpu_loader, device_loader = loader(False), loader(True)
    variants = {
        "bare": functools.partial(run_bare, case, args),
        "cpu-views": functools.partial(run_trainer, case, cpu_loader, prepare_fn(False), args),
        "device-views": functools.partial(run_trainer, case, device_loader, prepare_fn(True), args),
    }
    H.log(f"{backbone}: batch {args.batch}, {args.rounds} rounds of {args.warmup} + {args.steps} steps")
    return case, H.interleave(variants, args.rounds, before_each=session.probe)


# --------------------------------------------------------------------------------------------- the report
def view_rows(runs: dict[str, list[ViewRun]], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per view variant, medians over rounds of images/s: the host part, ``prepare_batch``, both together."""
    rows = {}
    for variant, rs in runs.items():
        rate = {part: H.Stats.of(args.batch * len(r.host) / sum(getattr(r, part)) for r in rs).median
                for part in ("host", "prepare")}
        rate["total"] = H.Stats.of(args.batch * len(r.host) / (sum(r.host) + sum(r.prepare)) for r in rs).median
        rows[variant] = rate
    return rows


def step_rows(runs: dict[str, list[StepRun]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per step variant: images/s (median over rounds), ratio to the bare step, step, data-wait and prepare times."""
    rates = {v: [args.batch * len(r.steps) / r.seconds for r in rs] for v, rs in runs.items()}
    bare = H.Stats.of(rates["bare"]).median
    rows = {}
    for variant, rs in runs.items():
        rate = H.Stats.of(rates[variant]).median
        waits, prepares = [t for r in rs for t in r.data_wait], [t for r in rs for t in r.prepare]
        rows[variant] = {
            "rate": rate, "ratio": rate / bare, "step": H.Stats.of(t for r in rs for t in r.steps),
            "round_ratios": [a / b for a, b in zip(rates[variant], rates["bare"])],
            "wait": H.Stats.of(waits).median if waits else None,
            "prepare": H.Stats.of(prepares).median if prepares else None,
        }
    return rows


def view_lines(rows: dict[str, dict[str, float]], shapes: dict[str, list[tuple[int, ...]]],
               args: argparse.Namespace) -> list[str]:
    """The section's table of the view making alone."""
    device = args.device.type
    table = [[LABELS[v], H.fmt_rate(r["host"]), H.fmt_rate(r["prepare"]), H.fmt_rate(r["total"]),
              f"**{r['total'] / rows['cpu']['total']:.2f}**"] for v, r in rows.items()]
    same = "the same on both paths" if shapes["cpu"] == shapes["device"] else f"DIFFERENT: {shapes}"
    crops = f"2 x {args.global_size}x{args.global_size} + {args.local_views} x {args.local_size}x{args.local_size}"
    return [
        "## View making alone", "",
        f"{args.view_batches} batches of {args.batch} images ({args.in_channels} x {args.source_size}x"
        f"{args.source_size} uint8) per round, {crops} crops each, no network; one process, the per-image part in the "
        "main process as one loader worker would run it.", "",
        *H.table(["variant", "images/s, per-image part (one core)", f"images/s, `prepare_batch` ({device})",
                  "images/s, both", "/ CPU views"], table),
        "", f"- View shapes of a batch: {same} ({', '.join('x'.join(map(str, s)) for s in shapes['cpu'][:3])}, ...).",
        "- A loader with W workers runs the per-image part on W cores at once, so it stops limiting the step when "
        "W x its rate exceeds the step's rate; `prepare_batch` runs in the training process, between steps.", "",
    ]


def step_lines(backbone: str, case: Any, rows: dict[str, dict[str, Any]]) -> list[str]:
    """The section of one backbone's training steps."""
    table = []
    for variant, r in rows.items():
        s = r["step"]
        table.append([LABELS[variant], H.fmt_rate(r["rate"]),
                      "1 (reference)" if variant == "bare" else f"**{r['ratio']:.3f}**", H.fmt_time(s.median),
                      f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n,
                      *("-" if r[k] is None else H.fmt_time(r[k]) for k in ("wait", "prepare"))])
    lines = [f"## Training step, {backbone}", "", case.what + ".", ""]
    lines += H.table(["variant", "images/s", "/ bare", "median step", "min - max", "n", "data wait per step",
                      "`prepare_batch` per step"], table)
    lines.append("")
    for variant in STEP_VARIANTS[1:]:
        rr = ", ".join(f"{x:.3f}" for x in rows[variant]["round_ratios"])
        lines.append(f"- {LABELS[variant]}: {rows[variant]['ratio']:.3f} x the bare throughput (per round: {rr}).")
    lines.append(f"- Noise: the bare steps range over {rows['bare']['step'].spread:.0%} of their median.")
    return lines + [""]


NOTES = [
    "## What is measured",
    "",
    "- Images: random uint8 tensors of the source size held in memory (reading and decoding files costs the same "
    "on both paths and is left out). **CPU views**: `ScaleIntensityd(minv=0, maxv=1)` and `MultiCropViewsd` (DINO's "
    "defaults: global scale 0.4-1, local 0.05-0.4, blur 1.0 / 0.1 / 0.5, solarization 0 / 0.2 / 0) per image, "
    "collated, then `prepare_view_list` copies every view to the device. **Device views**: `MultiCropViewParamsd` "
    "(the same random draws, one parameter vector per view) per image on the uint8 image, collated, then "
    "`MultiCropDeviceViews` copies the images once, scales them and makes every view of the batch with "
    "`apply_view_params`.",
    "- **View making alone**: per batch, the per-image transforms and the collation (`time.perf_counter`) and "
    "`prepare_batch` (device synchronised before and after) are timed apart; images/s = images / time, median over "
    "rounds.",
    "- **Training step**: the DINO networks, optimizers and bare step of `bench_ssl_methods.py`; the trainer is "
    "`SelfSupervisedTrainer` with `DINOMethod` over a `monai.data.DataLoader` (shuffle, drop_last, `pin_memory` on "
    "CUDA, persistent workers, `--num-workers`), one epoch of warm-up + counted iterations timed from Ignite's "
    "`ITERATION_COMPLETED` (data waits count). `data wait`: `GET_BATCH_STARTED` to `GET_BATCH_COMPLETED`; "
    "`prepare_batch`: its host time (on CUDA the time to queue the device views, not to run them).",
    "- Variants alternate their order round by round (`benchmarks/harness.py`); `/ bare` = ratio of throughputs.",
    "",
]


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--backbones", nargs="*", choices=tuple(BACKBONES), default=list(BACKBONES),
                   help="DINO backbones of the training-step comparison (none: view making only)")
    p.add_argument("--num-workers", type=int, help="loader workers (default: monai_ssl.utils.default_num_workers())")
    args = H.parse(p, argv, DEFAULTS)
    if args.num_workers is None:
        from monai_ssl.utils import default_num_workers

        args.num_workers = default_num_workers()
    if min(args.warmup, args.steps, args.rounds, args.view_batches, args.batch, args.num_images) < 1:
        p.error("--warmup, --steps, --rounds, --view-batches, --batch and --num-images must be >= 1")
    if args.cnn_depth not in (18, 50):
        p.error("--cnn-depth must be 18 or 50")
    if args.source_size < max(args.global_size, args.local_size):
        p.error(f"--source-size {args.source_size} must be at least the crop sizes "
                f"({args.global_size}, {args.local_size})")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the page section and, with ``--write``, put it into the page; return the figures."""
    args = parse_args(argv)
    session = H.Session(args.device, "bf16 autocast" if args.amp else "off")
    images = source_images(args)
    views = {v: functools.partial(run_views, v == "device", images, args) for v in VIEW_VARIANTS}
    run_views(True, images, args)  # warm-up: first calls, kernels
    view_runs = H.interleave(views, args.rounds, before_each=session.probe)
    rows = view_rows(view_runs, args)
    shapes = {v: rs[-1].shapes for v, rs in view_runs.items()}
    H.log("views: " + ", ".join(f"{v} {H.fmt_rate(r['total'])} images/s" for v, r in rows.items()))
    body = view_lines(rows, shapes, args)
    steps = {}
    for backbone in args.backbones:
        case, runs = measure_steps(backbone, images, args, session)
        steps[backbone] = step_rows(runs, args)
        body += step_lines(backbone, case, steps[backbone])
        H.log(f"{backbone}: " + ", ".join(f"{v} {r['ratio']:.3f}" for v, r in steps[backbone].items()))
        del case, runs
        gc.collect()  # the loaders' persistent workers stop here, before the next case's workers fork
    sizes = (f"{args.rounds} rounds; views: {args.view_batches} batches of {args.batch}; training: {args.warmup} "
             f"warm-up + {args.steps} counted steps per variant, batch {args.batch}; "
             f"loader workers: {args.num_workers}")
    lines = session.header("DINO multi-crop views: on the device against the loader", sizes, GPU_COMMAND)
    lines += body + NOTES
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)
    return {"views": rows, "shapes": shapes, "steps": steps}


if __name__ == "__main__":
    main()
