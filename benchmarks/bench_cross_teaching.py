"""Cross-teaching throughput: ``CrossTeachingTrainer`` and ``SegmentationPair`` against bare PyTorch (ISIC bundle).

The networks of ``bundles/isic_cross_teaching/configs/train.json``: a MONAI ``UNet`` (channels 16-256, 2 residual
units) and a 2D ``SwinUNETR`` (feature size 24), 3 input channels, 2 classes, one Adam each (lr 3.6e-4, weight
decay 1e-5), ``CrossTeachingLoss``. Everything runs on random tensors already on the device (no data loading):

1. **Training**, interleaved round by round on the same networks and optimizers: a bare loop (one forward of
   labeled + unlabeled images per network, the loss with the ramped weight, ``backward``, both Adam steps, a
   ``GradScaler`` under amp on CUDA), ``CrossTeachingTrainer`` fed by lists of the same batches, and the trainer
   with the bundle's per-iteration handlers. Target: trainer throughput >= 0.9 x the bare loop's.
2. **Inference**: the bundle's ``SlidingWindowInferer(roi_size=(patch, patch), sw_batch_size=4, overlap=0.25)`` on
   480x480 images with ``SegmentationPair(output="cnn")`` and ``output="mean"``, against the inferer on the bare
   UNet and on both bare networks one after the other.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import tempfile
import time
from typing import Any

import torch

import harness as H

SECTION = "cross_teaching"
TARGET_RATIO = 0.90
BATCH = 8  # labeled and unlabeled images per step, as in the bundle
IMAGE_SIZE = 480  # the bundle's working size: validation images are 480x480
PHASES = ("forward", "loss", "backward", "optimizer", "output", "handlers")
TRAIN = {"bare": "bare PyTorch loop", "trainer": "`CrossTeachingTrainer`",
         "trainer+handlers": "`CrossTeachingTrainer` + bundle's per-iteration handlers"}
INFER = {"bare-unet": "bare: inferer on the UNet", "pair-cnn": '`SegmentationPair(output="cnn")`',
         "bare-both": "bare: inferer on the UNet, then on the SwinUNETR",
         "pair-mean": '`SegmentationPair(output="mean")` (both networks)'}
GPU_COMMAND = "python benchmarks/bench_cross_teaching.py --device cuda --amp --write"
DEFAULTS: dict[str, dict[str, Any]] = {  # CPU: patches of 96 instead of 224 keep SwinUNETR to minutes
    "cuda": {"patch_size": 224, "steps": 20, "warmup": 3, "rounds": 5, "images": 16},
    "cpu": {"patch_size": 96, "steps": 3, "warmup": 1, "rounds": 3, "images": 2},
}


def build(device: torch.device) -> tuple[dict[str, torch.nn.Module], list[torch.optim.Optimizer]]:
    """The bundle's two networks ``{"cnn", "transformer"}`` on ``device`` and one Adam each."""
    from monai.networks.nets import SwinUNETR, UNet

    torch.manual_seed(0)
    nets = {
        "cnn": UNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(16, 32, 64, 128, 256),
                    strides=(2, 2, 2, 2), num_res_units=2).to(device),
        "transformer": SwinUNETR(spatial_dims=2, in_channels=3, out_channels=2, feature_size=24).to(device),
    }
    return nets, [torch.optim.Adam(n.parameters(), lr=3.6e-4, weight_decay=1e-5) for n in nets.values()]


def run_bare(nets: dict[str, torch.nn.Module], opts: list, batches: tuple[dict, dict], args: argparse.Namespace,
             steps: int) -> dict[str, list[float]]:
    """``steps`` bare cross-teaching steps; the time of each step (device synchronised) and of its phases."""
    from monai_ssl.losses import CrossTeachingLoss, cross_teaching_weight

    device, loss_fn = args.device, CrossTeachingLoss()
    scaler = torch.amp.GradScaler("cuda") if args.amp and device.type == "cuda" else None
    labeled, unlabeled = batches
    n = labeled["image"].shape[0]
    times: dict[str, list[float]] = {k: [] for k in ("step", *PHASES[:-1])}
    for net in nets.values():
        net.train()
    H.sync(device)
    last = time.perf_counter()
    for step in range(steps):
        for opt in opts:
            opt.zero_grad(set_to_none=False)
        inputs = torch.cat([labeled["image"], unlabeled["image"]])
        with torch.autocast(device.type, enabled=args.amp):
            logits = [net(inputs) for net in nets.values()]
            t_fwd = time.perf_counter()
            terms = loss_fn([lg[:n] for lg in logits], labeled["label"], [lg[n:] for lg in logits],
                            cross_teaching_weight(step, steps))
        t_loss = time.perf_counter()
        (scaler.scale(terms.loss) if scaler else terms.loss).backward()
        t_bwd = time.perf_counter()
        for opt in opts:
            scaler.step(opt) if scaler else opt.step()
        if scaler:
            scaler.update()
        t_opt = time.perf_counter()
        del inputs, logits, terms  # as the trainer drops them when its iteration returns
        H.sync(device)
        end = time.perf_counter()
        values = (end - last, t_fwd - last, t_loss - t_fwd, t_bwd - t_loss, t_opt - t_bwd, end - t_opt)
        for key, value in zip(times, values):
            times[key].append(value)
        last = end
    return times


def run_trainer(nets: dict[str, torch.nn.Module], opts: list, batches: tuple[dict, dict], args: argparse.Namespace,
                handlers: bool) -> dict[str, list[float]]:
    """One ``CrossTeachingTrainer`` run of ``warmup + steps`` iterations; counted steps and their phases.

    A step is the interval between the ends of consecutive iterations (after every handler, device synchronised);
    the phases come from the trainer's events: ``forward`` from ``ITERATION_STARTED`` (batch preparation,
    ``train()``, ``zero_grad`` included), ``loss``, ``backward`` (with the NaN check), ``optimizer`` to
    ``MODEL_COMPLETED``, ``output`` (output dict, release of the step's tensors) and ``handlers``.
    """
    from ignite.engine import Events
    from monai.engines.utils import IterationEvents
    from monai.handlers import StatsHandler, TensorBoardStatsHandler, from_engine
    from torch.utils.tensorboard import SummaryWriter

    from monai_ssl.engines import CrossTeachingTrainer, cross_teaching_scalars
    from monai_ssl.handlers import ProgressDisplay

    total = args.warmup + args.steps
    marks: dict[str, dict[int, float]] = {}

    def mark(engine: Any, key: str, sync: bool = False) -> None:
        if sync:
            H.sync(args.device)
        marks.setdefault(key, {})[engine.state.iteration] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench_ct_tb_") as log_dir, open(os.devnull, "w") as devnull:
        trainer = CrossTeachingTrainer(
            device=args.device, max_epochs=1, train_data_loader=[batches[0]] * total, amp=args.amp,
            unlabeled_data_loader=[batches[1]] * total, networks=nets, optimizers=opts, epoch_length=total)
        events = (Events.ITERATION_STARTED, IterationEvents.FORWARD_COMPLETED, IterationEvents.LOSS_COMPLETED,
                  IterationEvents.BACKWARD_COMPLETED, IterationEvents.MODEL_COMPLETED, Events.ITERATION_COMPLETED)
        for event, key in zip(events, ("start", *PHASES[:4], "output")):
            trainer.add_event_handler(event, mark, key)
        writer = None
        if handlers:  # the epoch-level ones (LR schedules, validation, checkpoints) are left out
            writer = SummaryWriter(log_dir)
            progress = ProgressDisplay(desc="cross_teaching")
            progress.bar.tqdm_kwargs["file"] = devnull
            for handler in (StatsHandler(tag_name="train_loss", iteration_log=False,
                                         output_transform=from_engine(["loss"], first=True)),
                            TensorBoardStatsHandler(summary_writer=writer, output_transform=cross_teaching_scalars),
                            progress):
                handler.attach(trainer)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, mark, "end", True)  # after every handler
        trainer.run()
        if writer is not None:
            writer.close()
    m, keys = marks, ("start", *PHASES[:4], "output", "end")
    times: dict[str, list[float]] = {"step": [], **{k: [] for k in PHASES}, "other": []}
    for i in range(args.warmup + 1, total + 1):
        times["step"].append(m["end"][i] - m["end"][i - 1])
        for phase, (a, b) in zip(PHASES, zip(keys, keys[1:])):
            times[phase].append(m[b][i] - m[a][i])
        times["other"].append(m["start"][i] - m["end"][i - 1])  # fetching the batches, engine events
    return times


def measure_training(args: argparse.Namespace, session: H.Session) -> dict[str, Any]:
    """Interleaved rounds of the training variants; per variant the runs' times and the peak GPU memory."""
    nets, opts = build(args.device)
    device, size, g = args.device, args.patch_size, torch.Generator().manual_seed(0)
    labeled = {"image": torch.rand(BATCH, 3, size, size, generator=g).to(device),
               "label": torch.randint(0, 2, (BATCH, 1, size, size), generator=g).float().to(device)}
    batches = (labeled, {"image": torch.rand(BATCH, 3, size, size, generator=g).to(device)})
    run_bare(nets, opts, batches, args, args.warmup)  # warm-up
    peaks: dict[str, list[float]] = {v: [] for v in TRAIN}

    def run(name: str) -> dict[str, list[float]]:
        H.reset_peak_memory(device)
        if name == "bare":
            times = run_bare(nets, opts, batches, args, args.steps)
        else:
            times = run_trainer(nets, opts, batches, args, handlers=name == "trainer+handlers")
        peaks[name].append(H.peak_memory_mib(device) or 0.0)
        return times

    runs = H.interleave({name: functools.partial(run, name) for name in TRAIN}, args.rounds, session.probe)
    params = {name: sum(p.numel() for p in n.parameters()) / 1e6 for name, n in nets.items()}
    return {"runs": runs, "peaks": peaks, "params": params}


def measure_inference(args: argparse.Namespace, session: H.Session) -> dict[str, Any]:
    """Interleaved rounds of the sliding-window variants: seconds per image, and the largest logit difference."""
    from monai.inferers import SlidingWindowInferer

    from monai_ssl.networks import SegmentationPair

    nets, _ = build(args.device)
    pair = SegmentationPair(nets["cnn"], nets["transformer"]).eval()
    inferer = SlidingWindowInferer(roi_size=(args.patch_size,) * 2, sw_batch_size=4, overlap=0.25)
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g).to(args.device) for _ in range(args.images)]

    def predict(name: str, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(args.device.type, enabled=args.amp):
            if name.startswith("bare"):
                outs = [inferer(x, nets["cnn"])] + ([inferer(x, nets["transformer"])] if name == "bare-both" else [])
                return outs[0]
            pair.output = "cnn" if name == "pair-cnn" else "mean"
            return inferer(x, pair)

    max_diff = float((predict("bare-unet", images[0]).float() - predict("pair-cnn", images[0]).float()).abs().max())
    predict("pair-mean", images[0])  # warm-up
    def run(name: str) -> list[float]:
        return [H.timed(functools.partial(predict, name, x), args.device)[0] for x in images]

    runs = H.interleave({name: functools.partial(run, name) for name in INFER}, args.rounds, session.probe)
    return {"runs": runs, "max_diff": max_diff}


def training_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Markdown for the training measurement."""
    runs, peaks, cuda = result["runs"], result["peaks"], args.device.type == "cuda"
    steps = {v: H.Stats.of(t for r in rs for t in r["step"]) for v, rs in runs.items()}
    bare = steps["bare"].median
    rows, phases = [], []
    for v, s in steps.items():
        ratio = "1 (reference)" if v == "bare" else f"**{bare / s.median:.3f}**"
        peak = f"{max(peaks[v]):,.0f} MiB" if cuda else "-"
        rows.append([TRAIN[v], H.fmt_time(s.median), f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n,
                     f"{1 / s.median:.3f}", H.fmt_rate(2 * BATCH / s.median), ratio, peak])
        parts = {k: H.Stats.of(t for r in runs[v] for t in r[k]).median for k in runs[v][0] if k != "step"}
        cells = (H.fmt_time(parts[k]) if k in parts else "-" for k in (*PHASES, "other"))
        phases.append([TRAIN[v], H.fmt_time(s.median), *cells])
    p = result["params"]
    lines = ["## Training: `CrossTeachingTrainer` against a bare loop", "",
             f"Parameters: UNet {p['cnn']:.2f} M, SwinUNETR {p['transformer']:.2f} M; patches {args.patch_size}x"
             f"{args.patch_size}, labeled batch {BATCH} + unlabeled batch {BATCH}. Target: trainer throughput >= "
             f"{TARGET_RATIO:.2f} x bare throughput.", ""]
    lines += H.table(["variant", "median step", "min - max", "n", "it/s", "images/s", "trainer / bare (throughput)",
                      "peak GPU memory"], rows) + [""]
    for v in list(TRAIN)[1:]:
        ratio = bare / steps[v].median
        per_round = ", ".join(f"{H.Stats.of(b['step']).median / H.Stats.of(r['step']).median:.3f}"
                              for r, b in zip(runs[v], runs["bare"]))
        lines.append(f"- {TRAIN[v]}: {ratio:.3f} x the bare throughput; target >= {TARGET_RATIO:.2f}: "
                     f"{H.verdict(ratio >= TARGET_RATIO)}. Per round: {per_round}.")
    lines += [f"- Noise: the bare loop's steps range over {steps['bare'].spread:.0%} of their median.", "",
              "Where a step goes (medians, host-side times" + ("; on CUDA only `step` includes the queued GPU work"
                                                                if cuda else "")
              + "): `forward` includes batch preparation, `train()` and `zero_grad`; `backward` the NaN check; "
              "`output` the output dict and the release of the step's tensors; `other` = from the end of the previous "
              "iteration to the start of this one (fetching the batches, engine events).",
              ""]
    return lines + H.table(["variant", "step", *PHASES, "other"], phases) + [""]


def inference_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Markdown for the inference measurement."""
    per_image = {v: H.Stats.of(t for r in rs for t in r) for v, rs in result["runs"].items()}
    bare = per_image["bare-unet"].median
    stride = max(int(args.patch_size * 0.75), 1)
    windows = (1 if args.patch_size >= IMAGE_SIZE else math.ceil((IMAGE_SIZE - args.patch_size) / stride) + 1) ** 2
    rows = [[INFER[v], H.fmt_time(s.median), f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n,
             f"{1 / s.median:.2f}", "1 (reference)" if v == "bare-unet" else f"{bare / s.median:.3f}"]
            for v, s in per_image.items()]
    both = per_image["bare-both"].median / per_image["pair-mean"].median
    return [f"## Inference: sliding window over {IMAGE_SIZE}x{IMAGE_SIZE} images", "",
            f"`SlidingWindowInferer(roi_size=({args.patch_size}, {args.patch_size}), sw_batch_size=4, overlap=0.25)`: "
            f"{windows} windows per image; networks in eval mode under `torch.inference_mode()` (and autocast with "
            f"`--amp`). `SegmentationPair(output=\"cnn\")` differs from the bare UNet by at most "
            f"{result['max_diff']:.1e} in the logits.", ""] + H.table(
        ["variant", "per image", "min - max", "n", "images/s", "/ bare UNet (throughput)"], rows) + [
        "", f"- `output=\"mean\"` runs at {both:.3f} x the throughput of the two bare passes, one per network.",
        f"- Noise: the bare UNet's times range over {per_image['bare-unet'].spread:.0%} of their median.", ""]


def main(argv: list[str] | None = None) -> None:
    """Measure, print the page section and, with ``--write``, put it into the page."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--no-training", action="store_true", help="skip the training measurement")
    p.add_argument("--no-inference", action="store_true", help="skip the inference measurement")
    args = H.parse(p, argv, DEFAULTS)
    if args.patch_size % 32 or args.patch_size < 64:
        p.error("--patch-size must be a multiple of 32 (SwinUNETR), at least 64")
    precision = "off"
    if args.amp:  # the trainer's default autocast dtype: float16 on CUDA (with a GradScaler), bfloat16 on CPU
        precision = "fp16 autocast, GradScaler" if args.device.type == "cuda" else "bf16 autocast"
    session = H.Session(args.device, precision)
    lines = []
    if not args.no_training:
        lines += training_lines(measure_training(args, session), args)
    if not args.no_inference:
        lines += inference_lines(measure_inference(args, session), args)
    sizes = (f"{args.rounds} rounds x ({args.warmup} warm-up + {args.steps} counted steps), {args.images} images per "
             "inference run")
    lines = session.header("Cross-teaching (ISIC bundle)", sizes, GPU_COMMAND) + lines + [
        "## What is measured", "",
        "- **bare loop**: per step `zero_grad` (both), one forward of the concatenated labeled + unlabeled batch "
        "through each network, `CrossTeachingLoss` with the ramped weight, `backward`, both `Adam.step` (through a "
        "`GradScaler` under amp on CUDA), then the step's tensors dropped.",
        "- **`CrossTeachingTrainer`**: fed by lists of the same batches (`[labeled] * n`, `[unlabeled] * n`); a new "
        "trainer per round on the same networks and optimizers. `+ handlers`: `StatsHandler` (epoch log), "
        "`TensorBoardStatsHandler` with `cross_teaching_scalars` (temporary folder), `ProgressDisplay` (`/dev/null`).",
        "- Ratio = median bare step / median variant step; variants alternate their order round by round "
        "(`benchmarks/harness.py`). Peak GPU memory: `torch.cuda.max_memory_allocated` per run (CUDA only).",
        "",
    ]
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)


if __name__ == "__main__":
    main()
