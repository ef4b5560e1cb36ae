"""PiCIE's feature bank memory (issue 24), the third part of ``bench_picie.py``'s section ``picie``.

What the clustering holds, computed at the bundle's sizes (k-means rows bounded by ``init_points``, one batch of
features, the label bank) against all pixel features at once; and a measured peak of ``cluster_epoch`` over batches
generated on the fly, in a fresh process per image count (CUDA: ``max_memory_allocated``; CPU: growth of the peak
resident set, ``VmHWM``). It builds on ``bench_picie.py``'s network and views; ``bench_picie.py`` runs it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import bench_picie as P
import bench_ssl_memory as M
import harness as H

__all__ = ["SyntheticBatches", "bank_bytes", "fmt_bytes", "measure_memory", "memory_lines", "memory_notes",
           "run_memory_child"]


class SyntheticBatches:
    """``num_items`` random images in batches made on the device as they are asked for (never all in memory)."""

    def __init__(self, num_items: int, batch: int, size: int, device: torch.device) -> None:
        self.num_items, self.batch, self.size, self.device = num_items, batch, size, device
        self.dataset = range(num_items)

    def __len__(self) -> int:
        return -(-self.num_items // self.batch)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for i, first in enumerate(range(0, self.num_items, self.batch)):
            yield P.make_batch(min(self.batch, self.num_items - first), first, self.size, self.device, seed=i)


def bank_bytes(images: int, feature_size: int, side: int, init_points: int, batch: int) -> dict[str, int]:
    """What the clustering holds (bytes), against one view's pixel features of every image at once (fp32).

    ``kmeans``: per view at most ``init_points`` rows of ``feature_size`` float32 (``MiniBatchKMeans.stored_rows``);
    at view 2's initialisation view 1's rows, view 2's collection and its concatenated copy: 3 x. ``batch``: both
    views' feature maps of one batch (fp32). ``labels``: the uint8 bank ``(images, 2, side, side)``.
    """
    pixels = side * side
    rows = min(init_points, images * pixels)
    held = {"kmeans": 3 * rows * feature_size * 4, "batch": 2 * min(batch, images) * feature_size * pixels * 4,
            "labels": images * 2 * pixels}
    return {"images": images, "feature_size": feature_size, **held, "held": sum(held.values()),
            "all_features": images * pixels * feature_size * 4}


def measure_memory(images: int, args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of one ``cluster_epoch`` over ``images`` images made batch by batch (in this process)."""
    from monai_ssl.engines.picie_clustering import PiCIEViewFeatures, cluster_epoch
    from monai_ssl.transforms import PiCIEAugmentation

    net, _ = P.build(args)
    with torch.no_grad(), P.autocast(args):
        P.view_features(net.eval(), P.make_batch(args.batch, 0, args.image_size, args.device))  # warm-up
    H.sync(args.device)
    before, how = M.start_peak_memory(args.device)
    cluster_epoch(PiCIEViewFeatures(net, PiCIEAugmentation(), P.SEED),
                  SyntheticBatches(images, args.batch, args.image_size, args.device), images, P.EPOCH, P.K, args.device,
                  init_points=args.init_points, init_iterations=args.init_iterations, amp=args.amp, show_progress=False)
    H.sync(args.device)
    peak = M.peak_memory_now(args.device)
    computed = bank_bytes(images, args.feature_size, args.image_size // 4, args.init_points, args.batch)
    return {**computed, "before_mib": before, "peak_mib": peak, "growth_mib": peak - before, "measure": how}


def run_memory_child(images: int, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure_memory` in a fresh process; its result, or ``error`` with the end of its output."""
    argv = [sys.executable, str(Path(P.__file__).resolve()), "--memory-child", str(images), "--device",
            args.device.type, "--backbone", args.backbone]
    for key in ("batch", "image_size", "feature_size", "init_points", "init_iterations"):
        argv += ["--" + key.replace("_", "-"), str(getattr(args, key))]
    argv += (["--amp"] if args.amp else []) + (["--threads", str(args.threads)] if args.threads else [])
    proc = subprocess.run(argv, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(P.MEMORY_MARK):
            return json.loads(line[len(P.MEMORY_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return {"images": images, "growth_mib": None, "error": tail[0][:200]}


def fmt_bytes(value: float) -> str:
    """``12.3 MiB`` or ``4.56 GiB``."""
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.1f} MiB"


def memory_lines(table: list[dict], measured: list[dict], args: argparse.Namespace) -> list[str]:
    """The two memory tables of the section: computed at the bundle's sizes, and measured."""
    lines = [f"## Feature bank memory, computed at the bundle's sizes ({P.BUNDLE_SIDE}x{P.BUNDLE_SIDE} feature maps of "
              f"224 px images, init_points {P.BUNDLE_INIT:,}, batch {P.BUNDLE_BATCH})", ""]
    lines += H.table(["images", "feature size", "k-means rows (bound)", "one batch", "label bank", "held in all",
                      "all features at once", "held / all"],
                     [[f"{t['images']:,}", t["feature_size"], fmt_bytes(t["kmeans"]), fmt_bytes(t["batch"]),
                       fmt_bytes(t["labels"]), f"**{fmt_bytes(t['held'])}**", fmt_bytes(t["all_features"]),
                       f"{t['held'] / t['all_features']:.3f}"] for t in table])
    what = "`torch.cuda.max_memory_allocated` - allocated before" if args.device.type == "cuda" else \
        "growth of the peak resident set (`VmHWM`)"
    lines += ["", f"## Feature bank memory, measured: one `cluster_epoch` at {args.image_size} px, feature size "
              f"{args.feature_size}, init_points {args.init_points:,}, batch {args.batch}", ""]
    lines += H.table(["images", what, "computed held", "all features at once"],
                     [[f"{m['images']:,}", m.get("error") or M.fmt_mib(m["growth_mib"]),
                       fmt_bytes(m["held"]) if "held" in m else "-",
                       fmt_bytes(m["all_features"]) if "all_features" in m else "-"] for m in measured])
    return lines + [""]


def memory_notes(args: argparse.Namespace) -> list[str]:
    """The "What is measured" items on memory."""
    return [
        "- **Memory, computed**: k-means rows = 3 x min(init_points, images x h x w) x feature size x 4 bytes "
        "(view 1's rows, view 2's collected rows and their concatenated copy at its initialisation); one batch = "
        "both views' fp32 feature maps; label bank = images x 2 x h x w bytes; all features at once = images x h x "
        "w x feature size x 4 bytes (one view; both views double it). The held bytes stop growing once images x h "
        "x w passes init_points, except the label bank (2 bytes per pixel of the feature map).",
        "- **Memory, measured**: a fresh process per image count, the network built and warmed up first, then one "
        "`cluster_epoch` over batches generated on the device as they are asked for (never all at once); the "
        "growth includes the network's activations of one batch" + (
            "." if args.device.type == "cuda" else " and the CPU allocator's unreturned pages (an upper bound)."),
    ]
