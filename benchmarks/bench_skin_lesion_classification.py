"""Skin-lesion classification (issue 23, S4MI's dermoscopy experiments): fine-tuning, evaluation and saliency speed,
and the fine-tuning step's peak memory.

On the synthetic skin-lesion demo (``make_skin_lesion_demo``), decoded and resized once into a MONAI ``CacheDataset``
over ``skin_lesion_transforms`` (so an epoch does not decode the images again), with the bundle's classifier
(``classifier_network``) per ``--encoders``:

- **fine-tuning**: MONAI's ``SupervisedTrainer`` (Adam 3.6e-4, weight decay 1e-5, ``CrossEntropyLoss``, batch 16, the
  settings of S4MI) against a bare PyTorch loop over the same loader, network and optimizer (target: >= 0.9);
- **evaluation**: ``SupervisedEvaluator`` with softmax post-processing against a bare ``torch.no_grad`` loop;
- **saliency**: ``monai_ssl.visualize.saliency_maps`` images per second (``gradient`` for every network, ``gradcam``
  for ResNets, ``vit_gradcam`` for ViTs);
- **memory**: one fine-tuning configuration per ``--memory-encoders`` at ``--memory-batch`` and ``--memory-size`` in a
  fresh process (two steps): ``torch.cuda.max_memory_allocated`` on CUDA, the growth of the peak RSS on the CPU
  (the helpers of ``bench_ssl_memory.py``).

Variants run interleaved round by round in one process (``harness.interleave``). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import bench_ssl_memory as M
import harness as H

SECTION = "skin_lesion_classification"
GPU_COMMAND = "python benchmarks/bench_skin_lesion_classification.py --device cuda --amp --write"
LEARNING_RATE, WEIGHT_DECAY = 3.6e-4, 1e-5  # S4MI's fine-tuning settings (issue 23)
MEMORY_MARK = "SKIN_MEMORY "
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"steps": 20, "warmup": 3, "rounds": 3, "batch_size": 16, "image_size": 224, "working_size": 480,
             "num_images": 96, "small_images": 0, "num_workers": 4, "memory_batch": 16, "memory_size": 224},
    "cpu": {"steps": 2, "warmup": 1, "rounds": 2, "batch_size": 16, "image_size": 224, "working_size": 480,
            "num_images": 24, "small_images": 0, "num_workers": 0, "memory_batch": 16, "memory_size": 224},
}


# --------------------------------------------------------------------------------------------- data and network
def cached_datasets(args: argparse.Namespace, root: Path) -> tuple[Any, Any, float]:
    """The demo's items in two ``CacheDataset`` (fine-tuning with augmentation, evaluation) and the caching seconds."""
    from monai.data import CacheDataset

    from monai_ssl.data import isic2017_classification_datalists, make_skin_lesion_demo
    from monai_ssl.recipes import skin_lesion_transforms

    per_class = max(1, -(-args.num_images // 3))
    make_skin_lesion_demo(root, n_train_per_class=per_class, size=(96, 128), seed=0)
    items = isic2017_classification_datalists(root)["train"]
    sizes = {"image_size": args.image_size, "working_size": args.working_size}
    start = time.perf_counter()
    train = CacheDataset(items, skin_lesion_transforms(**sizes, augment=True), num_workers=0, progress=False)
    evaluate = CacheDataset(items, skin_lesion_transforms(**sizes), num_workers=0, progress=False)
    return train, evaluate, time.perf_counter() - start


def loader(dataset: Any, args: argparse.Namespace, seed: int = 0) -> Any:
    """A ``DataLoader`` of exactly ``warmup + steps`` batches, drawn with replacement from the cached items."""
    from monai.data import DataLoader
    from torch.utils.data import RandomSampler

    sampler = RandomSampler(dataset, replacement=True, num_samples=(args.warmup + args.steps) * args.batch_size,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                      num_workers=args.num_workers, pin_memory=args.device.type == "cuda")


def network(encoder: str, image_size: int, args: argparse.Namespace) -> nn.Module:
    """The bundle's classifier (3 classes, RGB) on the device."""
    from monai_ssl.recipes import classifier_network

    small = bool(args.small_images) and not encoder.startswith("vit")
    return classifier_network(encoder, 3, 3, image_size=image_size, small_images=small).to(args.device)


def optimizer_of(net: nn.Module) -> torch.optim.Optimizer:
    """Adam 3.6e-4, weight decay 1e-5 (S4MI)."""
    return torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)


def autocast(args: argparse.Namespace) -> Any:
    """bf16 autocast with ``--amp``, else a no-op context."""
    return torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=bool(args.amp))


# --------------------------------------------------------------------------------------------- the variants
def counted_rate(seconds: float, args: argparse.Namespace) -> float:
    """Images per second of the ``steps`` counted batches."""
    return args.steps * args.batch_size / seconds


def bare_finetune(net: nn.Module, opt: torch.optim.Optimizer, data: Any, args: argparse.Namespace) -> float:
    """Images/s of a plain loop: to device, zero_grad, forward, cross-entropy, backward, step (the warm-up untimed)."""
    net.train()
    loss_fn, start = nn.CrossEntropyLoss(), 0.0
    for i, batch in enumerate(loader(data, args)):
        x = batch["image"].to(args.device, non_blocking=True)
        y = batch["label"].to(args.device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with autocast(args):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if i == args.warmup - 1:  # as IterationClock: from the end of the warm-up, the next batch's loading counted
            H.sync(args.device)
            start = time.perf_counter()
    H.sync(args.device)
    return counted_rate(time.perf_counter() - start, args)


def trainer_finetune(net: nn.Module, opt: torch.optim.Optimizer, data: Any, args: argparse.Namespace) -> float:
    """Images/s of MONAI's ``SupervisedTrainer`` over the same loader, timed from Ignite's iteration events."""
    from monai.engines import SupervisedTrainer

    trainer = SupervisedTrainer(device=args.device, max_epochs=1, train_data_loader=loader(data, args), network=net,
                                optimizer=opt, loss_function=nn.CrossEntropyLoss(), non_blocking=True,
                                amp=bool(args.amp), amp_kwargs={"dtype": torch.bfloat16} if args.amp else None)
    clock = H.IterationClock(trainer, args.device, args.warmup, args.warmup + args.steps)
    trainer.run()
    return counted_rate(clock.elapsed(), args)


def bare_evaluate(net: nn.Module, data: Any, args: argparse.Namespace) -> float:
    """Images/s of a plain ``torch.no_grad`` loop: to device, forward, softmax."""
    net.eval()
    start = 0.0
    with torch.no_grad():
        for i, batch in enumerate(loader(data, args)):
            with autocast(args):
                torch.softmax(net(batch["image"].to(args.device, non_blocking=True)).float(), dim=1)
            if i == args.warmup - 1:
                H.sync(args.device)
                start = time.perf_counter()
    H.sync(args.device)
    return counted_rate(time.perf_counter() - start, args)


def evaluator_evaluate(net: nn.Module, data: Any, args: argparse.Namespace) -> float:
    """Images/s of MONAI's ``SupervisedEvaluator`` with ``Activationsd(softmax=True)`` post-processing."""
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    evaluator = SupervisedEvaluator(device=args.device, val_data_loader=loader(data, args), network=net,
                                    non_blocking=True, postprocessing=Activationsd(keys="pred", softmax=True),
                                    amp=bool(args.amp), amp_kwargs={"dtype": torch.bfloat16} if args.amp else None)
    clock = H.IterationClock(evaluator, args.device, args.warmup, args.warmup + args.steps)
    evaluator.run()
    return counted_rate(clock.elapsed(), args)


def saliency_methods(encoder: str) -> tuple[str, ...]:
    """``gradient`` for every network, then Grad-CAM for CNNs or ViT Grad-CAM for ViTs."""
    return ("gradient", "vit_gradcam" if encoder.startswith("vit") else "gradcam")


def saliency_rate(net: nn.Module, images: torch.Tensor, method: str, args: argparse.Namespace) -> float:
    """Images/s of ``saliency_maps`` on one batch already on the device."""
    from monai_ssl.visualize import saliency_maps

    seconds, maps = H.timed(lambda: saliency_maps(net, images, method), args.device)
    if maps.shape != (images.shape[0], 1, *images.shape[2:]) or not bool(torch.isfinite(maps).all()):
        raise RuntimeError(f"saliency_maps({method}) gave shape {tuple(maps.shape)} or non-finite values")
    return images.shape[0] / seconds


def measure_encoder(encoder: str, data: tuple[Any, Any], session: H.Session, args: argparse.Namespace) -> dict:
    """Every interleaved variant of one encoder; medians, per-round ratios."""
    torch.manual_seed(0)
    net = network(encoder, args.image_size, args)
    opt = optimizer_of(net)
    images = next(iter(loader(data[1], args, seed=1)))["image"].to(args.device)
    variants = {
        "bare fine-tuning": lambda: bare_finetune(net, opt, data[0], args),
        "SupervisedTrainer": lambda: trainer_finetune(net, opt, data[0], args),
        "bare evaluation": lambda: bare_evaluate(net, data[1], args),
        "SupervisedEvaluator": lambda: evaluator_evaluate(net, data[1], args),
    }
    for method in saliency_methods(encoder):
        variants[f"saliency {method}"] = lambda m=method: saliency_rate(net, images, m, args)
    runs = H.interleave(variants, args.rounds, before_each=session.probe)
    return {"encoder": encoder, "runs": runs}


# --------------------------------------------------------------------------------------------- memory (child)
def measure_memory(encoder: str, args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of two fine-tuning steps of ``encoder`` at ``memory_batch`` x ``memory_size`` px (this process)."""
    torch.manual_seed(0)
    net = network(encoder, args.memory_size, args)
    opt, loss_fn = optimizer_of(net), nn.CrossEntropyLoss()
    x = torch.rand(args.memory_batch, 3, args.memory_size, args.memory_size, device=args.device)
    y = torch.randint(0, 3, (args.memory_batch,), device=args.device)
    H.sync(args.device)
    before, how = M.start_peak_memory(args.device)
    net.train()
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        with autocast(args):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    H.sync(args.device)
    peak = M.peak_memory_now(args.device)
    return {"encoder": encoder, "before_mib": before, "peak_mib": peak, "growth_mib": peak - before, "measure": how}


def run_memory_child(encoder: str, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure_memory` in a fresh process; its result, or ``error`` with the end of its output."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--memory-child", encoder, "--device", args.device.type,
            "--memory-batch", str(args.memory_batch), "--memory-size", str(args.memory_size),
            "--small-images", str(args.small_images)]
    argv += ["--amp"] if args.amp else []
    argv += ["--threads", str(args.threads)] if args.threads else []
    proc = subprocess.run(argv, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MEMORY_MARK):
            return json.loads(line[len(MEMORY_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return {"encoder": encoder, "peak_mib": None, "growth_mib": None, "error": tail[0][:200]}


# --------------------------------------------------------------------------------------------- the report
def rate_cell(values: list[float]) -> str:
    """Median images/s (min-max)."""
    s = H.Stats.of(values)
    return f"{H.fmt_rate(s.median)} ({H.fmt_rate(s.min)}-{H.fmt_rate(s.max)})"


def ratio(runs: dict[str, list[float]], variant: str, reference: str) -> tuple[float, str]:
    """The ratio of medians and the per-round ratios as text."""
    med = H.Stats.of(runs[variant]).median / H.Stats.of(runs[reference]).median
    rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(runs[variant], runs[reference]))
    return med, f"{med:.2f} (rounds {rounds})"


def report(results: list[dict], memory: list[dict], cache_seconds: float, args: argparse.Namespace) -> list[str]:
    """The tables and notes of the section."""
    rows, sal_rows = [], []
    for r in results:
        runs = r["runs"]
        ft, ft_text = ratio(runs, "SupervisedTrainer", "bare fine-tuning")
        ev, ev_text = ratio(runs, "SupervisedEvaluator", "bare evaluation")
        rows.append([r["encoder"], rate_cell(runs["bare fine-tuning"]), rate_cell(runs["SupervisedTrainer"]),
                     f"{ft_text} {H.verdict(ft >= 0.9)}", rate_cell(runs["bare evaluation"]),
                     rate_cell(runs["SupervisedEvaluator"]), f"{ev_text} {H.verdict(ev >= 0.9)}"])
        sal_rows += [[r["encoder"], k.split()[1], rate_cell(v)] for k, v in runs.items() if k.startswith("saliency")]
    lines = ["## Images per second (median over rounds, min-max)", ""]
    lines += H.table(["encoder", "bare fine-tuning", "SupervisedTrainer", "trainer / bare (>= 0.9)", "bare evaluation",
                      "SupervisedEvaluator", "evaluator / bare (>= 0.9)"], rows)
    lines += ["", "## Saliency maps", ""]
    lines += H.table(["encoder", "method", "images/s (one batch on the device)"], sal_rows)
    cuda = args.device.type == "cuda"
    what = "`torch.cuda.max_memory_allocated` - allocated before" if cuda else "peak RSS growth (`VmHWM`)"
    lines += ["", f"## Peak memory of a fine-tuning step, batch {args.memory_batch} at {args.memory_size} px", ""]
    lines += H.table(["encoder", what, "peak"], [
        [m["encoder"], m.get("error") or M.fmt_mib(m["growth_mib"]), M.fmt_mib(m.get("peak_mib"))] for m in memory])
    lines += [
        "", "## What is measured", "",
        f"- Data: {args.num_images} synthetic dermoscopy JPEGs (`make_skin_lesion_demo`, 96x128), decoded and resized "
        f"to {args.working_size} then {args.image_size} px once into a MONAI `CacheDataset` over "
        f"`skin_lesion_transforms` ({cache_seconds:.2f} s for both caches); batches drawn with replacement, "
        f"`num_workers={args.num_workers}`. Fine-tuning batches get the flips, rotation and red-channel "
        "normalisation after the cache; evaluation batches are cached whole.",
        "- Network: `classifier_network(encoder, 3, 3)` (3 classes as ISIC 2017), Adam 3.6e-4, weight decay 1e-5, "
        "`CrossEntropyLoss`.",
        f"- Each round runs {args.warmup} warm-up + {args.steps} counted batches of {args.batch_size} per variant; "
        "trainers are timed from Ignite's `ITERATION_COMPLETED` events (waiting for data counted), the bare loops "
        "with `perf_counter` from the end of the warm-up's last step over the same loader, so both include loading "
        "from the cache and the augmentation of the counted batches.",
        "- Memory: one fresh process per encoder, random images, two steps (the first allocates Adam's moments); "
        + ("tensors only." if cuda else "the growth of the peak resident set over the two steps (an upper bound "
           "of the tensors' own peak; see the `ssl_memory` section)."),
        "",
    ]
    return lines


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--encoders", default="resnet18,resnet50,vit_b16", help="comma-separated classifier encoders")
    p.add_argument("--memory-encoders", default="resnet50,vit_b16", help="comma-separated; '' skips memory")
    p.add_argument("--smallest", action="store_true", help="the quick case of the tests: resnet18, 32 px, batch 4")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = H.parse(p, argv, DEFAULTS)
    if args.smallest:
        args.encoders, args.memory_encoders = "resnet18", "resnet18"
        args.image_size = args.working_size = args.memory_size = 32
        args.batch_size = args.memory_batch = 4
        args.num_images, args.small_images, args.steps, args.warmup, args.rounds = 6, 1, 1, 1, 1
    from monai_ssl.recipes.encoders import ENCODERS

    args.encoders = [e for e in args.encoders.split(",") if e]
    args.memory_encoders = [e for e in args.memory_encoders.split(",") if e]
    bad = [e for e in args.encoders + args.memory_encoders if e not in ENCODERS or e == "slice_resnet18"]
    if bad:
        p.error(f"--encoders / --memory-encoders: unknown {bad}; choose from {[e for e in ENCODERS if 'slice' not in e]}")
    if min(args.steps, args.warmup, args.rounds, args.batch_size, args.memory_batch) < 1:
        p.error("--steps, --warmup, --rounds, --batch-size and --memory-batch must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the section and, with ``--write``, write it; the raw results."""
    args = parse_args(argv)
    if args.memory_child:
        print(MEMORY_MARK + json.dumps(measure_memory(args.memory_child, args)), flush=True)
        return {}
    session = H.Session(args.device, "bf16 autocast" if args.amp else "off")
    with tempfile.TemporaryDirectory() as tmp:
        train, evaluate, cache_seconds = cached_datasets(args, Path(tmp) / "demo")
        results = [measure_encoder(e, (train, evaluate), session, args) for e in args.encoders]
    memory = [run_memory_child(e, args) for e in args.memory_encoders]
    sizes = (f"{', '.join(args.encoders)} at {args.image_size} px, batch {args.batch_size}, {args.steps} counted steps "
             f"x {args.rounds} rounds; memory: {', '.join(args.memory_encoders)} at {args.memory_size} px, batch "
             f"{args.memory_batch}")
    lines = session.header("Skin-lesion classification benchmark", sizes, GPU_COMMAND)
    lines += report(results, memory, cache_seconds, args)
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)
    return {"results": results, "memory": memory, "cache_seconds": cache_seconds}


if __name__ == "__main__":
    main()
