"""PiCIE (issue 24): training step, clustering step and the feature bank's memory, against bare PyTorch.

The network of ``bundles/isic_cross_teaching/configs/picie.json`` (``PiCIENet``, K = 2, SGD lr 1e-4 momentum 0.9,
k-means ``init_points`` 300,000 and 30 Lloyd iterations) on random images already on the device (no data loading):

1. **Training step** (Cho et al., CVPR 2021, Sec. 3.3; reference ``train`` of ``train_picie.py``): a bare loop
   (``picie_view_params``, ``photometric_views``, ``geometric_transform``, two forwards, ``PiCIELoss`` with fixed
   centroids and labels, backward, SGD step; a ``GradScaler`` under amp on CUDA) against ``PiCIETrainer`` fed by
   a list of the same batch, timed from Ignite's ``ITERATION_COMPLETED`` after the warm-up, so the clustering at
   ``EPOCH_STARTED`` (on a one-batch cluster loader) is not counted. Target: trainer >= 0.9 x bare throughput.
2. **Clustering step** (Sec. 3.3, reference ``run_mini_batch_kmeans`` + ``compute_labels``): ``cluster_epoch``
   against the same work written plainly (both views' forwards under ``no_grad``, k-means: collect
   ``init_points`` rows, Lloyd iterations, mini-batch updates; a second pass labelling into a preallocated uint8
   bank). Target: ``cluster_epoch`` <= 1.1 x the bare time.
3. **Feature bank memory** (``bench_picie_memory.py``): the bytes the clustering holds (k-means rows bounded by ``init_points``, one batch of
   features, the label bank) against all pixel features at once, computed at the bundle's 56x56 feature maps; and
   a measured peak of ``cluster_epoch`` over batches generated on the fly, in a fresh process per image count
   (CUDA: ``max_memory_allocated``; CPU: growth of the peak resident set, ``VmHWM``).
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

import torch
import torch.nn.functional as F

import bench_picie_memory as MEM  # the memory part; it builds on this file's network and views
import harness as H

SECTION = "picie"
GPU_COMMAND = "python benchmarks/bench_picie.py --device cuda --amp --write"
TARGET_TRAIN, TARGET_CLUSTER = 0.90, 1.10
K, SEED, EPOCH = 2, 0, 1
BUNDLE_SIDE, BUNDLE_BATCH, BUNDLE_INIT = 224 // 4, 64, 300_000  # picie.json: 224 px -> 56x56 feature maps
MEMORY_MARK = "PICIE_MEMORY "
BACKBONES = {"cuda": "resnet34", "cpu": "resnet18"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"steps": 20, "warmup": 3, "rounds": 3, "batch": 64, "image_size": 224, "feature_size": 128,
             "cluster_images": 1024, "init_points": 300_000, "init_iterations": 30,
             "table_images": (100, 1_000, 10_000), "table_features": (64, 128, 256), "measure_images": (256, 2048)},
    "cpu": {"steps": 8, "warmup": 2, "rounds": 5, "batch": 8, "image_size": 64, "feature_size": 128,
            "cluster_images": 128, "init_points": 16_384, "init_iterations": 30,
            "table_images": (100, 1_000, 10_000), "table_features": (64, 128, 256), "measure_images": (64, 1024)},
}


class Batches(list):
    """A list of PiCIE batches that, like a ``DataLoader``, has a ``dataset`` (what ``PiCIETrainer`` counts)."""

    def __init__(self, batches: list[dict[str, torch.Tensor]], num_items: int) -> None:
        super().__init__(batches)
        self.dataset = range(num_items)


def make_batch(count: int, first: int, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """``{"image": (count, 3, size, size) in [0, 1] on device, "index": first..first+count-1 (CPU, long)}``."""
    g = torch.Generator(device=device).manual_seed(seed)
    return {"image": torch.rand(count, 3, size, size, generator=g, device=device),
            "index": torch.arange(first, first + count)}


def build(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """``PiCIENet`` (K = 2) on the device and the bundle's SGD (lr 1e-4, momentum 0.9, weight decay 5e-4)."""
    from monai_ssl.networks import PiCIENet

    torch.manual_seed(0)
    net = PiCIENet(2, 3, K, backbone=args.backbone, feature_size=args.feature_size).to(args.device)
    return net, torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)


def view_features(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``z1 = f(G(P1(x)))`` and ``z2 = G(f(P2(x)))`` written out (what ``PiCIEViewFeatures`` does), G on the host."""
    from monai_ssl.transforms import PiCIEAugmentation, geometric_transform, photometric_views, picie_view_params

    params = picie_view_params(batch["index"], EPOCH, SEED, PiCIEAugmentation(), channels=3)
    view1, view2 = photometric_views(batch["image"], params)
    z1 = net(geometric_transform(view1, params.geometric), return_features=True)
    z2 = net(view2, return_features=True)
    return z1, F.normalize(geometric_transform(z2, params.geometric, size=tuple(z1.shape[2:])), dim=1)


def autocast(args: argparse.Namespace) -> torch.autocast:
    """Autocast as the trainer's (float16 on CUDA, bfloat16 on the CPU), enabled with ``--amp``."""
    return torch.autocast(args.device.type, enabled=bool(args.amp))


# --------------------------------------------------------------------------------------------- 1. training step
def bare_training(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict, fixed: dict, args: argparse.Namespace,
                  steps: int) -> float:
    """Iterations per second of ``steps`` bare PiCIE steps on ``batch`` with fixed centroids, label bank, weights."""
    from monai_ssl.losses import PiCIELoss

    loss_fn = PiCIELoss()
    scaler = torch.amp.GradScaler("cuda") if args.amp and args.device.type == "cuda" else None
    c1, c2 = fixed["centroids"]
    w1, w2 = fixed["weights"]
    net.train()

    def step() -> None:
        opt.zero_grad(set_to_none=False)  # as the trainer (optim_set_to_none=False)
        labels = fixed["bank"][batch["index"].to(args.device)].long()
        with autocast(args):
            z1, z2 = view_features(net, batch)
            loss = loss_fn(z1, z2, c1, c2, labels[:, 0], labels[:, 1], w1, w2)["loss"]
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    seconds, _ = H.timed(lambda: [step() for _ in range(steps)], args.device)
    return steps / seconds


def trainer_training(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict, args: argparse.Namespace) -> float:
    """Iterations per second of ``PiCIETrainer`` over ``[batch] * (warmup + steps)``, from the warm-up's end."""
    from monai_ssl.engines import PiCIETrainer

    total = args.warmup + args.steps
    trainer = PiCIETrainer(
        device=args.device, max_epochs=1, train_data_loader=[batch] * total, epoch_length=total,
        cluster_data_loader=Batches([batch], batch["index"].numel()), network=net, optimizer=opt, num_clusters=K,
        seed=SEED, kmeans_init_points=args.init_points, kmeans_init_iterations=args.init_iterations,
        preview_images=0, show_progress=False, amp=args.amp)
    clock = H.IterationClock(trainer, args.device, args.warmup, total)  # after the clustering at EPOCH_STARTED
    trainer.run()
    return args.steps / clock.elapsed()


def measure_training(args: argparse.Namespace, session: H.Session) -> dict[str, list[float]]:
    """Interleaved rounds of the bare loop and the trainer on one network and optimizer: it/s per run."""
    net, opt = build(args)
    batch = make_batch(args.batch, 0, args.image_size, args.device)
    side, g = args.image_size // 4, torch.Generator().manual_seed(1)
    centroids = [F.normalize(torch.randn(K, args.feature_size, generator=g), dim=1).to(args.device) for _ in (0, 1)]
    bank = torch.randint(0, K, (args.batch, 2, side, side), generator=g, dtype=torch.uint8).to(args.device)
    fixed = {"centroids": centroids, "bank": bank, "weights": [torch.full((K,), 1 / K, device=args.device)] * 2}
    bare_training(net, opt, batch, fixed, args, args.warmup)  # warm-up
    variants = {"bare": functools.partial(bare_training, net, opt, batch, fixed, args, args.steps),
                "PiCIETrainer": functools.partial(trainer_training, net, opt, batch, args)}
    return H.interleave(variants, args.rounds, session.probe)


# --------------------------------------------------------------------------------------------- 2. clustering step
def nearest(rows: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Nearest centroid of each row by ``||c||^2 - 2 r.c`` (one matmul)."""
    return ((centroids * centroids).sum(1) - 2 * rows @ centroids.T).argmin(1)


def sums_and_sizes(rows: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per cluster, the sum of its rows ``(K, D)`` and their count ``(K,)``."""
    return torch.zeros_like(centroids).index_add_(0, labels, rows), torch.bincount(labels, minlength=K)


def lloyd(rows: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K random rows refined by Lloyd iterations (empty clusters keep their centroid); centroids and counts."""
    pick = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(SEED))[:K].to(rows.device)
    centroids = rows[pick].clone()
    for _ in range(iterations):
        sums, sizes = sums_and_sizes(rows, nearest(rows, centroids), centroids)
        centroids = torch.where(sizes[:, None] > 0, sums / sizes.clamp_min(1)[:, None], centroids)
    return centroids, torch.bincount(nearest(rows, centroids), minlength=K)


def bare_clustering(net: torch.nn.Module, batches: list[dict], bank: torch.Tensor, args: argparse.Namespace) -> None:
    """PiCIE's clustering step written plainly: k-means of both views' pixel features, then every pixel's label."""
    net.eval()
    collected: list[list[torch.Tensor]] = [[], []]
    state: list[tuple[torch.Tensor, torch.Tensor] | None] = [None, None]  # (centroids, counts) per view
    with torch.no_grad(), autocast(args):
        for batch in batches:
            for v, z in enumerate(view_features(net, batch)):
                rows = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float()
                if state[v] is None:
                    room = args.init_points - sum(r.shape[0] for r in collected[v])
                    collected[v].append(rows[:room].clone())
                    rows = rows[room:]
                    if room > collected[v][-1].shape[0]:
                        continue
                    state[v], collected[v] = lloyd(torch.cat(collected[v]), args.init_iterations), []
                if rows.shape[0]:  # the reference's update: N_k += n_k, c_k += n_k / N_k (mean_k - c_k)
                    centroids, counts = state[v]
                    sums, sizes = sums_and_sizes(rows, nearest(rows, centroids), centroids)
                    counts = counts + sizes
                    rate = (sizes / counts.clamp_min(1))[:, None]
                    means = sums / sizes.clamp_min(1)[:, None]
                    state[v] = (torch.where(sizes[:, None] > 0, (1 - rate) * centroids + rate * means, centroids), counts)
        final = [s[0] if s is not None else lloyd(torch.cat(c), args.init_iterations)[0] for s, c in zip(state, collected)]
        totals = torch.zeros(2, K, dtype=torch.long, device=args.device)
        for batch in batches:
            index = batch["index"].to(args.device)
            for v, z in enumerate(view_features(net, batch)):
                labels = nearest(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float(), final[v])
                bank[index, v] = labels.view(z.shape[0], *z.shape[2:]).to(torch.uint8)
                totals[v] += torch.bincount(labels, minlength=K)
    (totals / totals.sum(1, keepdim=True)).cpu()  # the cluster shares, read once


def measure_clustering(args: argparse.Namespace, session: H.Session) -> dict[str, list[float]]:
    """Interleaved rounds of ``cluster_epoch`` and the bare clustering over ``cluster_images``: seconds per epoch."""
    from monai_ssl.engines.picie_clustering import PiCIEViewFeatures, cluster_epoch
    from monai_ssl.transforms import PiCIEAugmentation

    net, _ = build(args)
    n, b = args.cluster_images, args.batch
    batches = Batches([make_batch(min(b, n - i), i, args.image_size, args.device, seed=i) for i in range(0, n, b)], n)
    side = args.image_size // 4
    bank = torch.zeros((n, 2, side, side), dtype=torch.uint8, device=args.device)
    views = PiCIEViewFeatures(net, PiCIEAugmentation(), SEED)

    def library() -> None:
        cluster_epoch(views, batches, n, EPOCH, K, args.device, init_points=args.init_points,
                      init_iterations=args.init_iterations, amp=args.amp, show_progress=False, labels=bank)

    with torch.no_grad():
        view_features(net.eval(), batches[0])  # warm-up
    variants = {"bare": lambda: H.timed(functools.partial(bare_clustering, net, batches, bank, args), args.device)[0],
                "cluster_epoch": lambda: H.timed(library, args.device)[0]}
    return H.interleave(variants, args.rounds, session.probe)


# --------------------------------------------------------------------------------------------- the report
def ratio_text(values: list[float], reference: list[float]) -> tuple[float, str]:
    """The ratio of medians ``values / reference`` and the per-round ratios as text."""
    med = H.Stats.of(values).median / H.Stats.of(reference).median
    return med, f"{med:.3f} (rounds {', '.join(f'{a / b:.2f}' for a, b in zip(values, reference))})"


def report(training: dict, clustering: dict, table: list[dict], measured: list[dict],
           args: argparse.Namespace) -> list[str]:
    """The tables and notes of the section."""
    lines = [f"## Training step: `PiCIETrainer` against a bare loop (target >= {TARGET_TRAIN})", ""]
    rows = [[v, f"{H.Stats.of(r).median:.3g} ({min(r):.3g}-{max(r):.3g})",
             H.fmt_rate(H.Stats.of(r).median * args.batch)] for v, r in training.items()]
    train_ratio, text = ratio_text(training["PiCIETrainer"], training["bare"])
    lines += H.table(["variant", "it/s median (min-max)", "images/s"], rows)
    lines += ["", f"- trainer / bare throughput: {text} {H.verdict(train_ratio >= TARGET_TRAIN)}", "",
              f"## Clustering step: `cluster_epoch` against a bare loop (target <= {TARGET_CLUSTER} x its time)", ""]
    rows = [[v, H.fmt_time(H.Stats.of(r).median), f"{H.fmt_time(min(r))} - {H.fmt_time(max(r))}",
             H.fmt_time(H.Stats.of(r).median * 1000 / args.cluster_images)] for v, r in clustering.items()]
    cluster_ratio, text = ratio_text(clustering["cluster_epoch"], clustering["bare"])
    lines += H.table(["variant", f"seconds per epoch ({args.cluster_images} images)", "min - max",
                      "per 1,000 images"], rows)
    lines += ["", f"- cluster_epoch / bare time: {text} {H.verdict(cluster_ratio <= TARGET_CLUSTER)}", "",
              ]
    lines += MEM.memory_lines(table, measured, args)
    lines += [
        "", "## What is measured", "",
        f"- Network: `PiCIENet(backbone=\"{args.backbone}\", feature_size={args.feature_size})`, K = {K}, SGD lr 1e-4 "
        f"momentum 0.9 weight decay 5e-4 (the bundle's); random images already on the device, batch {args.batch} at "
        f"{args.image_size} px; no data loading.",
        "- **Training, bare**: per step `zero_grad`, the batch's labels from a fixed uint8 bank, `picie_view_params`, "
        "`photometric_views`, `geometric_transform` (rows kept on the host), two forwards, `PiCIELoss` with fixed "
        "centroids and weights, `backward`, `SGD.step` (a `GradScaler` under amp on CUDA). **`PiCIETrainer`**: a "
        f"new trainer per round on the same network and optimizer, one epoch of {args.warmup} warm-up + "
        f"{args.steps} counted iterations over `[batch] * n`, timed from `ITERATION_COMPLETED` after the warm-up "
        "(`harness.IterationClock`), so its clustering at `EPOCH_STARTED` (a one-batch cluster loader) and the final "
        "clusters at `COMPLETED` are not counted.",
        f"- **Clustering**: {args.cluster_images} images in batches of {args.batch}, init_points "
        f"{args.init_points:,}, {args.init_iterations} Lloyd iterations. Bare: both views' features under `no_grad`, "
        "per view K random rows + Lloyd iterations on the first `init_points` rows, the reference's mini-batch "
        "updates on the rest, then a second pass writing every pixel's label into a preallocated uint8 bank and "
        "counting the shares on the device (read once). `cluster_epoch` does the same with k-means++ seeding, "
        "empty-cluster re-seeding, into the same preallocated bank, and the shares counted from the bank at the end.",
        *MEM.memory_notes(args),
        "",
    ]
    return lines


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the defaults of the device (``DEFAULTS``)."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--backbone", choices=("resnet18", "resnet34"), help="cuda resnet34 (S4MI), cpu resnet18")
    p.add_argument("--smallest", action="store_true", help="the tests' case: resnet18, 32 px, 2 rounds of 2 steps")
    p.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = H.parse(p, argv, DEFAULTS)
    args.backbone = args.backbone or BACKBONES[args.device.type]
    if args.smallest:
        args.backbone, args.image_size, args.feature_size, args.batch = "resnet18", 32, 16, 4
        args.rounds, args.steps, args.warmup, args.cluster_images = 2, 2, 1, 8
        args.init_points, args.init_iterations, args.measure_images = 128, 3, (8, 16)
    if min(args.steps, args.warmup, args.rounds, args.batch, args.cluster_images, args.init_iterations) < 1:
        p.error("--steps, --warmup, --rounds, --batch, --cluster-images and --init-iterations must be >= 1")
    if args.image_size % 32 or args.init_points < K:
        p.error(f"--image-size must be a multiple of 32 (got {args.image_size}) and --init-points >= {K}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the section and, with ``--write``, write it; the raw results."""
    args = parse_args(argv)
    if args.memory_child:
        print(MEMORY_MARK + json.dumps(MEM.measure_memory(args.memory_child, args)), flush=True)
        return {}
    precision = "off"
    if args.amp:
        precision = "fp16 autocast, GradScaler" if args.device.type == "cuda" else "bf16 autocast"
    session = H.Session(args.device, precision)
    training = measure_training(args, session)
    clustering = measure_clustering(args, session)
    table = [MEM.bank_bytes(n, d, BUNDLE_SIDE, BUNDLE_INIT, BUNDLE_BATCH)
             for d in args.table_features for n in args.table_images]
    measured = [MEM.run_memory_child(n, args) for n in args.measure_images]
    sizes = (f"{args.backbone}, {args.image_size} px, batch {args.batch}, {args.rounds} rounds x ({args.warmup} "
             f"warm-up + {args.steps} steps); clustering {args.cluster_images} images; memory measured at "
             f"{', '.join(str(n) for n in args.measure_images)} images")
    lines = session.header("PiCIE (ISIC bundle)", sizes, GPU_COMMAND) + report(training, clustering, table,
                                                                               measured, args)
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)
    return {"training": training, "clustering": clustering, "table": table, "measured": measured}


if __name__ == "__main__":
    main()
