"""Pseudo-label scoring throughput: ``score_pool`` over a loader of files against a bare forward pass.

Every pseudo-labeling round of ``bundles/oct_byol_pseudolabel`` scores the whole unlabeled pool with
``monai_ssl.pseudo_label.score_pool``. The classifier is the bundle's ``EncoderClassifier(resnet18_encoder(pool=True),
out_channels=4)`` (random weights, eval mode), placed with ``place_network`` (``channels_last`` with ``--amp``).
Three variants, interleaved round by round, each scoring the whole pool once per run:

* ``bare``: ``model(x)`` under ``torch.inference_mode()`` (and bf16 autocast with ``--amp``) on a batch of the
  pool already transformed and on the device, as many batches as the pool holds;
* ``premade``: ``score_pool`` over that batch kept in host memory (pinned on CUDA): its own cost without loading;
* ``loader``: ``score_pool`` over a new ``monai.data.DataLoader`` (the pool's JPEGs on disk, the bundle's scoring
  transform ``validate#preprocessing``, no shuffling, ``pin_memory`` on CUDA), as ``PseudoLabelRounds`` builds
  one every round, so the workers' start-up counts.

Target: ``score_pool`` over the loader keeps >= 90% of the bare forward pass's throughput.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

import harness as H

SECTION = "pseudo_label_scoring"
TARGET_RATIO = 0.90
NUM_CLASSES = 4  # the OCT classes
FINETUNE = H.REPO_ROOT / "bundles" / "oct_byol_pseudolabel" / "configs" / "finetune.json"
VARIANTS = ("bare", "premade", "loader")
LABELS = {"bare": "bare forward `model(x)`", "premade": "`score_pool`, pre-made batches (no loader)",
          "loader": "`score_pool`, DataLoader of files"}
GPU_COMMAND = "python benchmarks/bench_pseudo_label_scoring.py --device cuda --amp --write"

# the pool's files are listed as often as it takes to make --pool items (the real pool: 62,613 images)
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"files": 2048, "image_shape": (496, 512), "pool": 16384, "batch_size": 128, "image_size": 224,
             "rounds": 3},
    "cpu": {"files": 64, "image_shape": (248, 256), "pool": 64, "batch_size": 32, "image_size": 224, "rounds": 3},
}


class TimedLoader:
    """Iterate ``source`` and note when the iteration started and when the first batch arrived."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.started = self.first = 0.0

    def __iter__(self) -> Iterator[Any]:
        self.started = time.perf_counter()
        for i, batch in enumerate(self.source):
            if i == 0:
                self.first = time.perf_counter()
            yield batch


def build_pool(args: argparse.Namespace, root: str) -> list[dict[str, Any]]:
    """``args.pool`` items ``{"image", "label", "id"}``, over ``args.files`` synthetic OCT JPEGs written in ``root``."""
    from monai_ssl.data import classification_datalist, make_oct_demo

    h, w = args.image_shape
    demo = make_oct_demo(os.path.join(root, "oct"), n_train_per_class=math.ceil(args.files / NUM_CLASSES),
                         n_test_per_class=1, height=(h, h), width=(w, w))
    files = classification_datalist(demo, split="train")[0][: args.files]
    return [{**files[i % len(files)], "id": f"{i}"} for i in range(args.pool)]


def score_transform(image_size: int) -> Any:
    """The bundle's scoring transform, ``validate#preprocessing`` of ``finetune.json``, at ``image_size``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(FINETUNE))
    parser["image_size"], parser["in_channels"] = image_size, 1
    return parser.get_parsed_content("validate#preprocessing")


def measure(args: argparse.Namespace, root: str, session: H.Session) -> dict[str, Any]:
    """Interleaved rounds of the three variants; run times, start-up times and a check of the results."""
    from monai.data import DataLoader, Dataset

    from monai_ssl.networks import EncoderClassifier, place_network, resnet18_encoder
    from monai_ssl.pseudo_label import score_pool

    device, amp, channels_last = args.device, args.amp, args.amp
    torch.manual_seed(0)
    model = EncoderClassifier(resnet18_encoder(spatial_dims=2, in_channels=1, pool=True), out_channels=NUM_CLASSES)
    model = place_network(model, device, channels_last=channels_last).eval()
    pool, transform = build_pool(args, root), score_transform(args.image_size)
    n_batches = math.ceil(len(pool) / args.batch_size)
    host = torch.stack([torch.as_tensor(transform(dict(item))["image"]) for item in pool[: args.batch_size]])
    host = host.as_tensor() if hasattr(host, "as_tensor") else host
    host = host.pin_memory() if device.type == "cuda" else host
    x = host.to(device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    ids = [item["id"] for item in pool[: args.batch_size]]
    startup: list[float] = []
    last: dict[str, Any] = {}

    def bare() -> float:
        def run() -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                for _ in range(n_batches):
                    model(x)
        return H.timed(run, device)[0]

    def score(source: Any) -> tuple[float, np.ndarray, list[str]]:
        def run() -> tuple[np.ndarray, list[str]]:
            return score_pool(model, source, device, amp=amp, amp_dtype=torch.bfloat16, channels_last=channels_last)

        seconds, (probs, got) = H.timed(run, device)
        return seconds, probs, got

    def premade() -> float:
        seconds, last["premade"], _ = score([{"image": host, "id": ids}] * n_batches)
        return seconds

    def loader() -> float:
        timed = TimedLoader(DataLoader(Dataset(pool, transform=transform), batch_size=args.batch_size, shuffle=False,
                                       num_workers=args.num_workers, pin_memory=device.type == "cuda"))
        seconds, _, last["loader_ids"] = score(timed)
        startup.append(timed.first - timed.started)
        return seconds

    bare(), premade()  # warm-up
    times = H.interleave({"bare": bare, "premade": premade, "loader": loader}, args.rounds, session.probe)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        reference = torch.softmax(model(x).float(), dim=1).cpu().numpy()
    return {
        "times": times, "startup": startup, "images": len(pool),
        "max_diff": float(np.abs(last["premade"][: len(ids)] - reference).max()),
        "ids_in_order": last["loader_ids"] == [item["id"] for item in pool],
    }


def section(result: dict[str, Any], args: argparse.Namespace, session: H.Session) -> list[str]:
    """The page section: header, summary, table, notes."""
    n = result["images"]
    runs = {v: H.Stats.of(t) for v, t in result["times"].items()}
    rate = {v: n / s.median for v, s in runs.items()}
    startup = H.Stats.of(result["startup"])
    # every forward pass runs after the first batch has arrived: n images in the run's time less the start-up
    steady = H.Stats.of(n / (t - s) for t, s in zip(result["times"]["loader"], result["startup"])).median
    ratio = rate["loader"] / rate["bare"]
    h, w = args.image_shape
    sizes = (f"pool of {n} items over {args.files} grayscale JPEGs of {h}x{w} (`make_oct_demo`), scored at "
             f"{args.image_size}x{args.image_size}, batch {args.batch_size}, loader workers: {args.num_workers}, "
             f"{args.rounds} rounds")
    lines = session.header("Pseudo-label scoring benchmark", sizes, GPU_COMMAND)
    lines += ["## Summary", ""] + H.table(["target", "measured", "met?"], [[
        f"`score_pool` over a DataLoader of files >= {TARGET_RATIO:.0%} of the bare forward's throughput",
        f"{ratio:.3f}", H.verdict(ratio >= TARGET_RATIO)]]) + [""]
    rows = []
    for v in VARIANTS:
        s = runs[v]
        ratio = "1 (reference)" if v == "bare" else f"**{rate[v] / rate['bare']:.3f}**"
        rows.append([LABELS[v], H.fmt_rate(rate[v]), ratio, H.fmt_time(s.median),
                     f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n])
    lines += H.table(["variant", "images/s", "/ bare", "median run", "min - max", "n"], rows) + [""]
    lines += [
        f"- DataLoader: start-up (new loader and workers, first batch) {H.fmt_time(startup.median)} per run (median); "
        f"from the first batch on {H.fmt_rate(steady)} images/s, {steady / rate['bare']:.3f} x the bare forward. The "
        "real pool (OCT2017: 62,613 images) pays the start-up once per round.",
        "- Check: the probabilities of `score_pool` differ from `softmax(model(x))` by at most "
        f"{result['max_diff']:.1e}; ids in pool order: {'yes' if result['ids_in_order'] else '**no**'}.",
        f"- Noise: the bare runs range over {runs['bare'].spread:.0%} of their median.",
        "",
        "## What is measured",
        "",
        "- **bare forward**: one batch of the pool, transformed and on the device (`channels_last` with `--amp`), "
        "through `model(x)` under `torch.inference_mode()` and `torch.autocast(dtype=torch.bfloat16, enabled=amp)`, "
        "once per batch of the pool; the device synchronised at the start and the end of the run.",
        "- **`score_pool`** (`amp=amp, amp_dtype=torch.bfloat16, channels_last=amp`): over that batch held in host "
        "memory (pinned on CUDA), and over a new `monai.data.DataLoader(Dataset(pool, validate#preprocessing), "
        "shuffle=False, pin_memory on CUDA)` per run, as `PseudoLabelRounds` builds one per round, with `--num-workers` workers (default "
        "`default_num_workers()`). The bundle gives that loader `score_batch_size` (4 x the training batch) and "
        "`finetune.json`'s `num_workers` (the same default).",
        "- images/s = pool size / median run time; `/ bare` = ratio of throughputs. Variants alternate their order "
        "round by round (`benchmarks/harness.py`).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    """Measure, print the page section and, with ``--write``, put it into the page."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--num-workers", type=int, help="loader workers (default: monai_ssl.utils.default_num_workers())")
    args = H.parse(p, argv, DEFAULTS)
    args.pool = math.ceil(args.pool / args.batch_size) * args.batch_size  # whole batches, as in the bare forward
    if args.num_workers is None:
        from monai_ssl.utils import default_num_workers

        args.num_workers = default_num_workers()
    session = H.Session(args.device, "bf16 autocast, channels_last" if args.amp else "off")
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as root:
        result = measure(args, root, session)
    lines = section(result, args, session)
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)


if __name__ == "__main__":
    main()
