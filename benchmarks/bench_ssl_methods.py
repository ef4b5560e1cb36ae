"""Self-supervised methods on one trainer: each method's bare PyTorch step against ``SelfSupervisedTrainer``.

For BYOL (Grill et al. 2020), DINO (Caron et al. 2021; 2 global + 6 local crops with a ResNet, global crops with a
ViT) and CASS (Singh, Sizikova and Cirrone 2022; a ResNet and a ViT on the same image), two variants interleaved
round by round on one network and its optimizer(s), on views already on the device: ``bare`` (the method's step
written plainly: forward of its views, its loss, backward, optimizer step(s), the moving-average update where it has
one) and ``trainer`` (``SelfSupervisedTrainer`` with the method over an in-memory loader of the same views, timed from
Ignite events). Target (issue 22): the trainer within 10% of the bare step's throughput. Peak GPU memory per batch
size on CUDA. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

import harness as H

SECTION = "ssl_methods"
TARGET_RATIO = 0.90  # trainer / bare step, throughput (issue 22: within 10%)
METHOD_CASES = {"byol": ("byol",), "dino": ("dino-resnet", "dino-vit"), "cass": ("cass",)}
GPU_COMMAND = "python benchmarks/bench_ssl_methods.py --device cuda --amp --write"

# per device: the GPU sizes are issue 22's (DINO ViT-S/16 and ResNet-50 at 224 with 2 + 6 crops, CASS ResNet-50 +
# ViT-B/16 at 224, batch 16); the CPU ones keep the whole run to a few minutes on 2 cores.
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"steps": 20, "warmup": 5, "rounds": 3, "batch": 64, "cass_batch": 16, "in_channels": 3,
             "global_size": 224, "local_size": 96, "local_views": 6, "cnn_depth": 50, "small_images": 0,
             "patch_size": 16, "dino_vit_hidden": 384, "dino_vit_heads": 6, "cass_vit_hidden": 768,
             "cass_vit_heads": 12, "vit_layers": 12, "dino_out": 65536},
    "cpu": {"steps": 6, "warmup": 2, "rounds": 3, "batch": 8, "cass_batch": 8, "in_channels": 3,
            "global_size": 32, "local_size": 16, "local_views": 6, "cnn_depth": 18, "small_images": 1,
            "patch_size": 8, "dino_vit_hidden": 192, "dino_vit_heads": 3, "cass_vit_hidden": 192,
            "cass_vit_heads": 3, "vit_layers": 4, "dino_out": 4096},
}


@dataclass
class Case:
    """One method on one network: what both variants share."""

    name: str
    what: str  # the network and views, for the page
    method: Any  # a monai_ssl.methods.SelfSupervisedMethod
    network: torch.nn.Module
    optimizers: list[torch.optim.Optimizer]
    views: list[torch.Tensor]  # on the device
    bare_step: Callable[[], None] = field(repr=False, default=lambda: None)

    @property
    def batch(self) -> int:
        """Images per step."""
        return int(self.views[0].shape[0])


@dataclass
class Run:
    """One timed run of a variant: the counted steps."""

    seconds: float
    steps: list[float]
    peak_mib: float | None


# --------------------------------------------------------------------------------------------- the networks
def cnn(args: argparse.Namespace) -> torch.nn.Module:
    """ResNet-18 or ResNet-50 (``--cnn-depth``), with the small-image stem on request."""
    from monai_ssl.networks import resnet18_encoder, resnet50_encoder

    build = resnet50_encoder if args.cnn_depth == 50 else resnet18_encoder
    return build(in_channels=args.in_channels, small_images=bool(args.small_images))


def vit(args: argparse.Namespace, hidden: int, heads: int, interpolate_position: bool = False) -> torch.nn.Module:
    """A ViT encoder trained at the global crop size (``--global-size``, ``--patch-size``); with
    ``interpolate_position`` it also takes the local crops (position embeddings resized)."""
    from monai_ssl.networks import vit_encoder

    return vit_encoder(args.in_channels, args.global_size, args.patch_size, hidden_size=hidden,
                       num_layers=args.vit_layers, num_heads=heads, interpolate_position=interpolate_position)


def random_views(batch: int, sizes: list[int], args: argparse.Namespace) -> list[torch.Tensor]:
    """Pre-made views ``(batch, in_channels, s, s)`` on the device, one per size."""
    return [torch.rand(batch, args.in_channels, s, s, device=args.device) for s in sizes]


def build_case(name: str, args: argparse.Namespace) -> Case:
    """The method, network, optimizer(s), views and bare step of case ``name``."""
    from monai_ssl.losses import BYOLLoss, CASSLoss, DINOLoss
    from monai_ssl.methods import BYOLMethod, CASSMethod, DINOMethod, method_optimizers
    from monai_ssl.networks import BYOL, CASS, DINO, cancel_last_layer_gradients

    torch.manual_seed(0)
    g, n = args.global_size, args.batch
    resnet = f"ResNet-{args.cnn_depth}" + (" (small-image stem)" if args.small_images else "")
    vit_name = f"ViT {args.vit_layers} layers, hidden {{}}, patch {args.patch_size}"
    if name == "byol":
        method, network = BYOLMethod(), BYOL(cnn(args))
        views = random_views(n, [g, g], args)
        what = f"`BYOL({resnet})`, hidden 4096, projection 256; 2 views of {g}x{g}, batch {n}; Adam"
        optimizer = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-6)
    elif name.startswith("dino"):
        on_vit = name == "dino-vit"
        # the ViT resizes its position embeddings to the local crops (DINO's multi-crop on a ViT)
        local_views = args.local_views
        encoder = (vit(args, args.dino_vit_hidden, args.dino_vit_heads, interpolate_position=True) if on_vit
                   else cnn(args))
        method = DINOMethod(args.dino_out, global_views=2, local_views=local_views)
        network = DINO(encoder, out_features=args.dino_out, use_bn_in_head=not on_vit)
        views = random_views(n, [g, g] + [args.local_size] * local_views, args)
        crops = f"2 x {g}x{g}" + (f" + {local_views} x {args.local_size}x{args.local_size}" if local_views else "")
        backbone = vit_name.format(args.dino_vit_hidden) if on_vit else resnet
        what = f"`DINO({backbone})`, K = {args.dino_out:,}; crops {crops}, batch {n}; AdamW"
        optimizer = functools.partial(torch.optim.AdamW, lr=5e-4, weight_decay=0.04)
    elif name == "cass":
        method = CASSMethod()
        network = CASS(cnn(args), vit(args, args.cass_vit_hidden, args.cass_vit_heads))
        views = random_views(args.cass_batch, [g], args)
        what = (f"`CASS({resnet}, {vit_name.format(args.cass_vit_hidden)})`, outputs 1000; 1 view of {g}x{g}, "
                f"batch {args.cass_batch}; one Adam per network")
        optimizer = functools.partial(torch.optim.Adam, lr=1e-3)
    else:
        raise ValueError(f"unknown case {name!r}")
    network = network.to(args.device)
    optimizers = method_optimizers(method, network, optimizer)
    case = Case(name, what, method, network, optimizers, views)
    autocast = functools.partial(torch.autocast, args.device.type, dtype=torch.bfloat16, enabled=args.amp)

    def zero_grad() -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=False)  # as the trainer (optim_set_to_none=False)

    def step_all() -> None:
        for opt in optimizers:
            opt.step()

    if name == "byol":
        byol_loss = BYOLLoss()

        def bare_step() -> None:
            zero_grad()
            with autocast():
                out = network(*views)
                loss = byol_loss(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
            loss.backward()
            step_all()
            network.update_target(0.99)

    elif name.startswith("dino"):
        dino_loss = DINOLoss(args.dino_out, len(views), 2).to(args.device)

        def bare_step() -> None:
            zero_grad()
            with autocast():
                out = network(views, 2)
                loss = dino_loss(out["student"], out["teacher"], 0)
            loss.backward()
            cancel_last_layer_gradients(network.student_head, 0, 1)  # the first epoch, as the trainer's run
            step_all()
            network.update_teacher(0.996)

    else:
        cass_loss = CASSLoss()

        def bare_step() -> None:
            zero_grad()
            with autocast():
                out = network(views[0])
                loss = cass_loss(out["cnn"], out["transformer"])
            loss.backward()
            step_all()

    case.bare_step = bare_step
    return case


# --------------------------------------------------------------------------------------------- the variants
def run_bare(case: Case, args: argparse.Namespace) -> Run:
    """``warmup`` uncounted and ``steps`` counted bare steps, the device synchronised around each."""
    case.network.train()
    for _ in range(args.warmup):
        case.bare_step()
    H.reset_peak_memory(args.device)
    times = [H.timed(case.bare_step, args.device)[0] for _ in range(args.steps)]
    return Run(sum(times), times, H.peak_memory_mib(args.device))


def run_trainer(case: Case, args: argparse.Namespace) -> Run:
    """One ``SelfSupervisedTrainer`` epoch of ``warmup + steps`` iterations over an in-memory list of the views."""
    from monai_ssl.engines import SelfSupervisedTrainer

    device, total = args.device, args.warmup + args.steps
    batch = dict(zip(case.method.view_keys, case.views))
    cuda = device.type == "cuda"
    trainer = SelfSupervisedTrainer(
        device=device, max_epochs=1, train_data_loader=[batch] * total, method=case.method, network=case.network,
        optimizer=case.optimizers, epoch_length=total, amp=args.amp, amp_kwargs={"dtype": torch.bfloat16},
        non_blocking=cuda, finite_check_interval=20 if cuda else 1,
    )
    clock = H.IterationClock(trainer, device, args.warmup, total)
    trainer.run()
    return Run(clock.elapsed(), clock.steps(), H.peak_memory_mib(device))


def memory_by_batch(case: Case, args: argparse.Namespace) -> dict[int, str]:
    """Peak GPU memory of two bare steps at each ``--memory-batches`` size (the views cut or repeated to it)."""
    results, views = {}, list(case.views)  # the bare step reads case.views, changed in place
    for batch in args.memory_batches:
        reps = -(-batch // case.batch)
        case.views[:] = [v.repeat(reps, *([1] * (v.ndim - 1)))[:batch] for v in views]
        try:
            case.bare_step()
            H.reset_peak_memory(args.device)
            case.bare_step()
            H.sync(args.device)
            results[batch] = f"{H.peak_memory_mib(args.device):,.0f} MiB"
        except torch.OutOfMemoryError:
            results[batch] = "out of memory"
        torch.cuda.empty_cache()
    case.views[:] = views
    return results


# --------------------------------------------------------------------------------------------- the report
def case_lines(case: Case, runs: dict[str, list[Run]], memory: dict[int, str] | None) -> tuple[list[str], float]:
    """The section of one case and its trainer / bare throughput ratio."""
    rates = {v: [case.batch * len(r.steps) / r.seconds for r in rs] for v, rs in runs.items()}
    bare = H.Stats.of(rates["bare"]).median
    rows = []
    for variant, rs in runs.items():
        rate, step = H.Stats.of(rates[variant]).median, H.Stats.of(t for r in rs for t in r.steps)
        peaks = [r.peak_mib for r in rs if r.peak_mib is not None]
        rows.append([variant, H.fmt_rate(rate), "1 (reference)" if variant == "bare" else f"**{rate / bare:.3f}**",
                     H.fmt_time(step.median), f"{H.fmt_time(step.min)} - {H.fmt_time(step.max)}", step.n,
                     f"{max(peaks):,.0f} MiB" if peaks else "-"])
    ratio = H.Stats.of(rates["trainer"]).median / bare
    per_round = ", ".join(f"{t / b:.3f}" for t, b in zip(rates["trainer"], rates["bare"]))
    spread = H.Stats.of(t for r in runs["bare"] for t in r.steps).spread
    lines = [f"## {case.name}", "", case.what + ".", ""]
    lines += H.table(["variant", "images/s", "/ bare", "median step", "min - max", "n", "peak GPU memory"], rows)
    lines += ["", f"- trainer: {ratio:.3f} x the bare throughput (per round: {per_round}).",
              f"- Noise: the bare steps range over {spread:.0%} of their median."]
    if memory:
        lines += ["- Peak GPU memory of the bare step by batch size: "
                  + ", ".join(f"{b}: {m}" for b, m in memory.items()) + "."]
    return lines + [""], ratio


NOTES = [
    "## What is measured",
    "",
    "- **bare**: the method's step written plainly on random views already on the device: `zero_grad`, forward of "
    "its views, its loss (`BYOLLoss`, `DINOLoss` at epoch 0, `CASSLoss`), `backward`, the optimizer step(s) (CASS: "
    "one Adam per network), then BYOL's `update_target(0.99)` / DINO's last-layer gradients dropped (first epoch) and "
    "`update_teacher(0.996)`; device synchronised around each step. With `--amp`: bf16 autocast.",
    "- **trainer**: `SelfSupervisedTrainer` with `BYOLMethod` / `DINOMethod` / `CASSMethod`, the same network and "
    "optimizer(s), over an in-memory list of the same views (`prepare_view_list`: no data loading), no handlers, "
    "`finite_check_interval` 20 on CUDA and 1 on the CPU; one epoch of warm-up + counted iterations, timed from the "
    "`ITERATION_COMPLETED` ending the warm-up to the last one (device synchronised at both). It adds what the method "
    "computes for handlers (BYOL's projection spread, DINO's teacher entropy and KL, CASS's cosine), the schedules "
    "and the NaN guard.",
    "- DINO with a ViT sees the global and the local crops: `vit_encoder(..., interpolate_position=True)` resizes "
    "its position embeddings (learnt at the global size) bicubically to each crop's patch grid, as DINO does.",
    "- Throughput = images (not views) per second over the counted steps, median over rounds; `/ bare` = ratio to "
    "the bare step's. Variants alternate their order round by round (`benchmarks/harness.py`). Peak memory here is "
    "measured on CUDA only (`torch.cuda.max_memory_allocated`); per batch size on either device, one fresh process "
    "per case: `bench_ssl_memory.py` (section *Peak memory of the self-supervised methods per batch size*). DINO's "
    "views made on the device against the loader: `bench_multi_crop_views.py`.",
    "",
]


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--methods", nargs="+", choices=tuple(METHOD_CASES), default=list(METHOD_CASES))
    p.add_argument("--memory-batches", type=int, nargs="*", default=[8, 16, 32, 64, 128],
                   help="batch sizes of the peak-memory sweep (CUDA only; none: no sweep)")
    args = H.parse(p, argv, DEFAULTS)
    if min(args.warmup, args.steps, args.rounds) < 1:
        p.error("--warmup, --steps and --rounds must be >= 1")
    if args.cnn_depth not in (18, 50):
        p.error("--cnn-depth must be 18 or 50")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure, print the page section and, with ``--write``, put it into the page."""
    args = parse_args(argv)
    session = H.Session(args.device, "bf16 autocast" if args.amp else "off")
    body, summary = [], []
    for name in (c for m in args.methods for c in METHOD_CASES[m]):
        case = build_case(name, args)
        H.log(f"{name}: batch {case.batch}, {args.rounds} rounds of {args.warmup} + {args.steps} steps")
        variants = {"bare": functools.partial(run_bare, case, args),
                    "trainer": functools.partial(run_trainer, case, args)}
        runs = H.interleave(variants, args.rounds, before_each=session.probe)
        memory = memory_by_batch(case, args) if args.device.type == "cuda" and args.memory_batches else None
        lines, ratio = case_lines(case, runs, memory)
        H.log(f"{name}: trainer / bare = {ratio:.3f}")
        body += lines
        summary.append([name, f"trainer >= {TARGET_RATIO:.0%} of the bare step's throughput", f"{ratio:.3f}",
                        H.verdict(ratio >= TARGET_RATIO)])
        del case
    sizes = f"{args.rounds} rounds x ({args.warmup} warm-up + {args.steps} counted steps) per variant"
    lines = session.header("Self-supervised methods on one trainer", sizes, GPU_COMMAND)
    lines += ["## Summary", ""] + H.table(["method", "target", "measured", "met?"], summary) + [""] + body + NOTES
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)


if __name__ == "__main__":
    main()
