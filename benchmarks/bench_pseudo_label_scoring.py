"""Pseudo-label scoring throughput: ``score_pool`` against the bare forward pass, and a whole round's split.

Every pseudo-labeling round scores the whole unlabeled pool, so the cost of
:func:`monai_ssl.pseudo_label.score_pool` per image matters. Two measurements:

1. **Scoring throughput.** ``score_pool`` over a ``monai.data.DataLoader`` that reads synthetic
   OCT2017-layout JPEGs from disk through the bundle's scoring transform (``validate#preprocessing``
   of ``bundles/oct_byol_pseudolabel/configs/finetune.json``, which ``pseudolabel.json`` passes to
   ``PseudoLabelRounds`` as ``score_transform``), built like ``PseudoLabelRounds`` builds it, against a
   bare loop ``with torch.inference_mode(): model(x)`` over the same images already collated and on the
   device (same network ``EncoderClassifier(resnet18_encoder(pool=True), 4)`` in eval mode, same batch
   size, same autocast setting). A third variant, ``score_pool`` over the same pre-made batches held in
   host memory (no loader), separates ``score_pool``'s own work (host-to-device copy, softmax, copy back,
   ids) from data loading. The variants alternate round by round (forwards in even rounds, backwards in
   odd ones) in one process; the figure is the ratio of median times per image, target
   ``score_pool / bare <= 1.10``.
2. **A whole round.** The real bundle (``finetune.json`` + ``pseudolabel.json``) runs in a subprocess
   through ``monai.bundle.create_workflow`` (what ``monai.bundle.run`` calls) with small settings and one
   pseudo-labeling round; ``rounds.csv`` gives the train / score / validate seconds of each round, and
   Ignite event handlers attached to the bundle's trainer and evaluator split the training time further
   (data wait, steps, the ``ValidationHandler`` pass inside training).

The results go into their own section of a Markdown page (``docs/benchmarks.md``): the section that
starts with ``# Pseudo-label scoring benchmark`` is replaced, everything before it is kept. Run
``python benchmarks/bench_pseudo_label_scoring.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):  # run from a checkout without installing; the BYOL benchmark's helpers
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_byol_pretraining import TARGET_RATIO, _fmt_s, _fmt_us, _log, _median, _sync, machine_info  # noqa: E402

SECTION_HEADING = "# Pseudo-label scoring benchmark"
BUNDLE_CONFIGS: tuple[Path, ...] = tuple(
    REPO_ROOT / "bundles" / "oct_byol_pseudolabel" / "configs" / name for name in ("finetune.json", "pseudolabel.json")
)
NUM_CLASSES = 4  # the OCT demo's classes (CNV, DME, DRUSEN, NORMAL)

# OCT2017 (Kermany et al. 2018) as the bundle's recipe uses it: 83,484 training images (CNV 37,205, DME
# 11,348, DRUSEN 8,616, NORMAL 26,315), 968 test images; labeled_fraction 0.25 per class, 2000
# pseudo-labels per round, 2 epochs per round. Used only for the projection at the recipe's scale.
RECIPE = {"labeled": 20_871, "pool": 62_613, "val": 968, "pseudo_per_round": 2_000, "epochs": 2}

# Defaults per device: the CPU ones keep the whole script under ~4 minutes on 2 cores; the CUDA ones
# score a larger pool and run a larger round.
DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "images": 128,
        "rounds": 3,
        "round_train_per_class": 24,
        "round_test_per_class": 4,
        "round_pseudo_labels": 8,
        "round_num_workers": 0,
    },
    "cuda": {
        "images": 2048,
        "rounds": 5,
        "round_train_per_class": 256,
        "round_test_per_class": 32,
        "round_pseudo_labels": 64,
        "round_num_workers": 2,
    },
}


# --------------------------------------------------------------------------------------------- building blocks
def build_model(device: torch.device) -> torch.nn.Module:
    """The bundle's classifier, ``EncoderClassifier(resnet18_encoder(pool=True), 4)``, in eval mode on ``device``."""
    from monai_ssl.networks import EncoderClassifier, resnet18_encoder

    encoder = resnet18_encoder(spatial_dims=2, in_channels=1, pool=True)
    return EncoderClassifier(encoder, out_channels=NUM_CLASSES).to(device).eval()


def build_score_transform(image_size: int) -> Any:
    """The bundle's scoring transform: ``validate#preprocessing`` of ``finetune.json`` at ``image_size``.

    ``LoadImage2Dd(channels=1) -> ScaleIntensityd(0, 1) -> Resized(area) -> EnsureTyped(track_meta=False)``,
    parsed from the config itself so that it stays the pipeline the rounds use.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE_CONFIGS[0]))
    parser["image_size"] = image_size
    parser["in_channels"] = 1
    return parser.get_parsed_content("validate#preprocessing")


def make_pool(root: str, images: int) -> list[dict[str, Any]]:
    """``images`` items ``{"image": path, "label", "id"}`` of a fresh synthetic OCT demo under ``root``."""
    from monai_ssl.data import classification_datalist, make_oct_demo

    per_class = max(2, math.ceil(images / NUM_CLASSES))
    demo = make_oct_demo(os.path.join(root, "oct_pool"), n_train_per_class=per_class, n_test_per_class=1, seed=0)
    items, _ = classification_datalist(demo, split="train")
    return items[:images]


def build_loader(
    pool: list[dict[str, Any]], transform: Any, batch_size: int, num_workers: int, device: torch.device
) -> Any:
    """The scoring loader as ``PseudoLabelRounds._score`` builds it (no shuffling, ``pin_memory`` on CUDA)."""
    from monai.data import DataLoader, Dataset

    return DataLoader(
        Dataset(pool, transform=transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


def premade_batches(
    pool: list[dict[str, Any]], transform: Any, batch_size: int, device: torch.device
) -> list[dict[str, Any]]:
    """The pool transformed once and collated into host batches ``{"image", "id"}`` (pinned on CUDA)."""
    batches = []
    for start in range(0, len(pool), batch_size):
        items = [transform(dict(item)) for item in pool[start : start + batch_size]]
        images = torch.stack([torch.as_tensor(item["image"]) for item in items]).contiguous()
        if hasattr(images, "as_tensor"):
            images = images.as_tensor()
        if device.type == "cuda":
            images = images.pin_memory()
        batches.append({"image": images, "id": [str(item["id"]) for item in items]})
    return batches


class TimedBatches:
    """Iterable wrapper that records when each batch is asked for and when it arrives.

    ``score_pool`` iterates it once per call: ``iter_seconds`` is the time to create the loader's
    iterator (worker start-up), ``asked[i]`` / ``got[i]`` bracket the wait for batch ``i``, and the
    last entry of ``asked`` is the request that ends the loop. Everything between ``got[i]`` and
    ``asked[i + 1]`` is ``score_pool``'s work on batch ``i`` (copy to the device, forward, softmax,
    copy back, ids).
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.iter_seconds = 0.0
        self.asked: list[float] = []
        self.got: list[float] = []

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[Any]:
        start = time.perf_counter()
        iterator = iter(self.source)
        self.iter_seconds = time.perf_counter() - start
        while True:
            self.asked.append(time.perf_counter())
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.got.append(time.perf_counter())
            yield batch


# --------------------------------------------------------------------------------------------- the variants
def run_bare(
    model: torch.nn.Module, batches: Sequence[torch.Tensor], device: torch.device, amp: bool
) -> dict[str, Any]:
    """Bare forward passes over pre-made batches on the device; wall time of the run and of each batch.

    ``with torch.inference_mode(), torch.autocast(device.type, enabled=amp): model(x)`` per batch,
    nothing else. On CUDA the device is synchronised after every batch (``score_pool`` waits for each
    batch too, when it copies the probabilities back).
    """
    times = []
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for x in batches:
            t0 = time.perf_counter()
            with torch.autocast(device.type, enabled=amp):
                model(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    _sync(device)
    return {"total": time.perf_counter() - start, "batches": times}


def run_score_pool(
    model: torch.nn.Module, source: Any, device: torch.device, amp: bool
) -> tuple[dict[str, Any], np.ndarray, list[str]]:
    """One ``score_pool`` call over ``source`` (a loader or a list of batches) with its time split."""
    from monai_ssl.pseudo_label import score_pool

    timed = TimedBatches(source)
    _sync(device)
    start = time.perf_counter()
    probabilities, ids = score_pool(model, timed, device, amp=amp)
    _sync(device)
    end = time.perf_counter()
    n = len(timed.got)
    waits = [timed.got[i] - timed.asked[i] for i in range(n)]
    work = [timed.asked[i + 1] - timed.got[i] for i in range(n)]
    result = {
        "total": end - start,
        "iter": timed.iter_seconds,
        "setup": (timed.asked[0] - start) if timed.asked else 0.0,  # incl. iterator creation
        "waits": waits,
        "work": work,
        "tail": (end - timed.asked[-1]) if timed.asked else 0.0,  # end of the loop (workers stop), concatenation
    }
    return result, probabilities, ids


def _median_call(fn: Any, calls: int, device: torch.device) -> float:
    """Median wall time of ``calls`` calls of ``fn()`` (CUDA synchronised around each)."""
    times = []
    for _ in range(calls):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return _median(times)


def time_pieces(
    model: torch.nn.Module,
    images: torch.Tensor,
    items: Sequence[dict[str, Any]],
    transform: Any,
    device: torch.device,
    amp: bool,
    calls: int = 30,
) -> dict[str, float]:
    """Per-batch cost of each piece of the scoring path besides the forward pass, measured directly.

    ``copy``: the host batch to the device (``non_blocking`` on CUDA, a no-op on CPU); ``post``:
    ``logits_to_probabilities(logits).cpu().numpy()`` on the logits of that batch (softmax in
    float32, copy back); ``transform``: the scoring transform of one pool item (median over
    ``items``); ``collate``: ``list_data_collate`` of the transformed items (what the DataLoader does
    per batch); ``forward``: the forward pass of the batch, for scale. On CPU ``post`` and
    ``collate`` are also timed with one intra-op thread (``*_1t``): tiny operations that open an
    OpenMP parallel region wait for every thread of the team, which costs milliseconds when another
    process holds one of the cores.
    """
    from monai.data import list_data_collate

    from monai_ssl.pseudo_label import logits_to_probabilities

    non_blocking = device.type == "cuda"
    transformed = [transform(dict(item)) for item in items]
    out: dict[str, float] = {
        "transform": _median([_median_call(lambda item=item: transform(dict(item)), 1, device) for item in items]),
        "collate": _median_call(lambda: list_data_collate(transformed), max(3, calls // 5), device),
        "batch": float(len(items)),
    }
    with torch.inference_mode():
        x = images.to(device)
        with torch.autocast(device.type, enabled=amp):
            logits = model(x)
        out["copy"] = _median_call(lambda: images.to(device, non_blocking=non_blocking), calls, device)
        out["post"] = _median_call(lambda: logits_to_probabilities(logits).cpu().numpy(), calls, device)

        def forward() -> None:
            with torch.autocast(device.type, enabled=amp):
                model(x)

        out["forward"] = _median_call(forward, 3, device)
    if device.type == "cpu" and torch.get_num_threads() > 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out["post_1t"] = _median_call(lambda: logits_to_probabilities(logits).cpu().numpy(), calls, device)
            out["collate_1t"] = _median_call(lambda: list_data_collate(transformed), max(3, calls // 5), device)
        finally:
            torch.set_num_threads(threads)
    return out


def contention_probe(calls: int = 15) -> float:
    """Median time of a tiny OpenMP parallel region (``torch.exp`` of 2^17 floats, microseconds when idle).

    Taken on the CPU before every timed run: when another process keeps a core busy, a parallel
    region waits for the thread that has no core and this jumps to milliseconds. Used only to tell
    on the page whether the runs shared the machine.
    """
    x = torch.ones(2**17)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        torch.exp(x)
        times.append(time.perf_counter() - start)
    return _median(times)


def _variants(workers: Sequence[int]) -> list[str]:
    """Variant names: ``bare``, ``premade`` and ``loader-wN`` for each worker count."""
    return ["bare", "premade"] + [f"loader-w{n}" for n in workers]


def variant_label(variant: str) -> str:
    """How a variant is named on the page."""
    if variant == "bare":
        return "bare loop `model(x)`"
    if variant == "premade":
        return "`score_pool`, pre-made batches (no loader)"
    return f"`score_pool`, DataLoader num_workers={variant.split('-w')[1]}"


def measure_scoring(args: argparse.Namespace, work_dir: str) -> dict[str, Any]:
    """Interleaved rounds of every scoring variant; raw timings and a correctness check."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(device)
    transform = build_score_transform(args.image_size)
    _log(f"scoring: making {args.images} demo JPEGs")
    pool = make_pool(work_dir, args.images)
    host = premade_batches(pool, transform, args.batch_size, device)
    on_device = [b["image"].to(device) for b in host]
    _sync(device)
    # warm-up (allocator, oneDNN/cuDNN kernels) on the first batch, which also checks that bare and
    # score_pool agree; the timed runs are checked against each other below
    with torch.inference_mode(), torch.autocast(device.type, enabled=args.amp):
        reference = torch.softmax(model(on_device[0]).float(), dim=1).cpu().numpy()
    _, first_probs, _ = run_score_pool(model, host[:1], device, args.amp)
    pieces = time_pieces(model, host[0]["image"], pool[: args.batch_size], transform, device, args.amp)
    variants = _variants(args.num_workers)
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    pool_ids = [str(x["id"]) for x in pool]
    premade_probs: np.ndarray | None = None
    max_diff, ids_in_order = 0.0, True
    idle_probe = contention_probe(50)
    probes: list[float] = []
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            _log(f"scoring: round {r + 1}/{args.rounds}, {variant}")
            probes.append(contention_probe())
            if variant == "bare":
                raw[variant].append(run_bare(model, on_device, device, args.amp))
                continue
            source = host if variant == "premade" else build_loader(
                pool, transform, args.batch_size, int(variant.split("-w")[1]), device
            )
            timing, probabilities, ids = run_score_pool(model, source, device, args.amp)
            raw[variant].append(timing)
            if premade_probs is None:
                premade_probs = probabilities
            max_diff = max(max_diff, float(np.abs(probabilities - premade_probs).max()))
            ids_in_order = ids_in_order and ids == pool_ids
    check = {
        "first_batch_vs_bare": float(np.abs(first_probs - reference).max()),
        "runs_vs_first_run": max_diff,
        "ids_in_order": ids_in_order,
        "shape": list(premade_probs.shape) if premade_probs is not None else [0, 0],
    }
    probe = {"before": idle_probe, "median": _median(probes), "max": max(probes), "runs": probes}
    return {
        "raw": raw,
        "check": check,
        "pieces": pieces,
        "probe": probe,
        "n_images": len(pool),
        "n_batches": len(host),
    }


def summarise_scoring(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Medians per variant: run time, per image, ratio to bare, per-round ratios and the time split."""
    raw, n = result["raw"], result["n_images"]
    bare_totals = [run["total"] for run in raw["bare"]]
    bare = _median(bare_totals)
    rows: dict[str, dict[str, Any]] = {}
    for variant, runs in raw.items():
        totals = [run["total"] for run in runs]
        med = _median(totals)
        row: dict[str, Any] = {
            "median": med,
            "min": min(totals),
            "max": max(totals),
            "n": len(totals),
            "per_image": med / n,
            "images_per_s": n / med,
            "ratio": med / bare,
            "round_ratios": [run["total"] / b for run, b in zip(runs, bare_totals)],
        }
        if variant == "bare":
            row["batch"] = _median([t for run in runs for t in run["batches"][:-1] or run["batches"]])
        else:
            row["split"] = {
                "setup": _median([run["setup"] for run in runs]),
                "iter": _median([run["iter"] for run in runs]),
                "first_wait": _median([run["waits"][0] for run in runs]),
                "wait": _median([sum(run["waits"]) for run in runs]),
                "work": _median([sum(run["work"]) for run in runs]),
                "tail": _median([run["tail"] for run in runs]),
            }
            row["work_ratio"] = row["split"]["work"] / bare
            row["batch_work"] = _median([t for run in runs for t in run["work"][:-1] or run["work"]])
            row["batch_wait"] = _median([t for run in runs for t in run["waits"][1:] or run["waits"]])
        rows[variant] = row
    return rows


# --------------------------------------------------------------------------------------------- a whole round
def round_overrides(spec: dict[str, Any], bundle_root: str, dataset_dir: str) -> dict[str, Any]:
    """Overrides of the bundle for the timed round (the same keys a ``monai.bundle run`` command line takes)."""
    return {
        "bundle_root": bundle_root,
        "dataset_dir": dataset_dir,
        "pretrained_encoder": "none",
        "num_rounds": 1,
        "num_epochs": 1,
        "num_pseudo_labels": spec["round_pseudo_labels"],
        "num_workers": spec["round_num_workers"],
        "batch_size": spec["batch_size"],
        "image_size": spec["image_size"],
        "device": f"$torch.device(\"{'cuda:0' if spec['device'] == 'cuda' else 'cpu'}\")",
        "amp": bool(spec["amp"]),
    }


def task_round(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the pseudo-labeling bundle for round 0 and one round; ``rounds.csv`` plus event timings.

    Called in a subprocess: the bundle sets the determinism flags and configures logging.
    """
    from ignite.engine import Events
    from monai.bundle import create_workflow

    from monai_ssl.data import make_oct_demo

    work = Path(spec["work_dir"])
    demo = make_oct_demo(
        work / "oct_round",
        n_train_per_class=spec["round_train_per_class"],
        n_test_per_class=spec["round_test_per_class"],
        seed=0,
    )
    overrides = round_overrides(spec, str(work / "bundle"), str(demo))
    workflow = create_workflow(config_file=[str(p) for p in BUNDLE_CONFIGS], **overrides)
    parser = workflow.parser
    trainer = parser.get_parsed_content("train#trainer")
    evaluator = parser.get_parsed_content("validate#evaluator")
    rounds = parser.get_parsed_content("rounds")

    keys = ("rounds_start", "round_end", "train_start", "train_end", "eval_start", "eval_end")
    keys += ("gb0", "gb1", "it0", "it1")
    marks: dict[str, list[float]] = {k: [] for k in keys}

    def stamp(key: str) -> Any:
        def handler(_: Any) -> None:
            marks[key].append(time.perf_counter())

        return handler

    rounds.add_event_handler(Events.STARTED, stamp("rounds_start"))
    rounds.add_event_handler(Events.ITERATION_COMPLETED, stamp("round_end"))
    trainer.add_event_handler(Events.STARTED, stamp("train_start"))
    trainer.add_event_handler(Events.COMPLETED, stamp("train_end"))
    trainer.add_event_handler(Events.GET_BATCH_STARTED, stamp("gb0"))
    trainer.add_event_handler(Events.GET_BATCH_COMPLETED, stamp("gb1"))
    trainer.add_event_handler(Events.ITERATION_STARTED, stamp("it0"))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, stamp("it1"))
    evaluator.add_event_handler(Events.STARTED, stamp("eval_start"))
    evaluator.add_event_handler(Events.COMPLETED, stamp("eval_end"))

    start = time.perf_counter()
    workflow.run()
    workflow.finalize()
    elapsed = time.perf_counter() - start
    if len(marks["round_end"]) < 2:
        raise RuntimeError(f"the bundle finished {len(marks['round_end'])} round(s); expected round 0 and round 1")
    with open(work / "bundle" / "models" / "pseudolabel" / "rounds.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))

    def inside(start_key: str, end_key: str, lo: float, hi: float) -> float:
        return sum(e - s for s, e in zip(marks[start_key], marks[end_key]) if lo <= s and e <= hi)

    per_round = []
    train_runs = list(zip(marks["train_start"], marks["train_end"]))
    for r, row in enumerate(rows):
        lo = marks["rounds_start"][0] if r == 0 else marks["round_end"][r - 1]
        hi = marks["round_end"][r]
        t_lo, t_hi = train_runs[r]
        per_round.append(
            {
                "round": int(row["round"]),
                "n_labeled": int(row["n_labeled"]),
                "n_new": int(row["n_new"]),
                "n_pseudo": int(row["n_pseudo"]),
                "n_pool_after": int(row["n_pool"]),
                "train_seconds": float(row["train_seconds"]),
                "score_seconds": float(row["score_seconds"]),
                "val_seconds": float(row["val_seconds"]),
                "wall": hi - lo,
                "train_eval": inside("eval_start", "eval_end", t_lo, t_hi),
                "train_evals": sum(1 for s in marks["eval_start"] if t_lo <= s <= t_hi),
                "train_data": inside("gb0", "gb1", t_lo, t_hi),
                "train_steps": inside("it0", "it1", t_lo, t_hi),
                "train_iterations": sum(1 for s in marks["it0"] if t_lo <= s <= t_hi),
            }
        )
    return {
        "rounds": per_round,
        "elapsed": elapsed,
        "n_train": spec["round_train_per_class"] * NUM_CLASSES,
        "n_val": spec["round_test_per_class"] * NUM_CLASSES,
        "overrides": {k: v for k, v in overrides.items() if k not in ("bundle_root", "dataset_dir")},
    }


def run_round_child(spec: dict[str, Any], work_dir: str) -> dict[str, Any]:
    """Run :func:`task_round` in a fresh Python process (its log goes to a file, shown on failure)."""
    spec_path = os.path.join(work_dir, "round.spec.json")
    result_path = os.path.join(work_dir, "round.result.json")
    log_path = os.path.join(work_dir, "round.log")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump({**spec, "work_dir": work_dir, "result_path": result_path}, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--_child", spec_path],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO_ROOT),
        )
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-4000:]
        raise RuntimeError(f"the bundle round failed (exit code {proc.returncode}); end of its log:\n{tail}")
    with open(result_path, encoding="utf-8") as f:
        return json.load(f)


def _child_main(spec_path: str) -> None:
    """Entry point of the round subprocess: read the spec, run the bundle, write the result."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result = task_round(spec)
    with open(spec["result_path"], "w", encoding="utf-8") as f:
        json.dump(result, f)


# --------------------------------------------------------------------------------------------- report
def _fmt_ms(seconds: float) -> str:
    """Milliseconds with one decimal."""
    return f"{seconds * 1e3:.1f} ms"


def _pct(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole``."""
    return f"{part / whole * 100:.1f}%" if whole > 0 else "n/a"


def scoring_lines(args: argparse.Namespace, scoring: dict[str, Any], rows: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown of the scoring-throughput part."""
    n, device = scoring["n_images"], torch.device(args.device)
    bare = rows["bare"]
    lines = [
        "## Scoring throughput",
        "",
        f"Pool: {n} synthetic OCT2017-layout grayscale JPEGs (`make_oct_demo`, about 90-110 x 120-140 px, "
        f"{NUM_CLASSES} classes) read from disk; batch {args.batch_size} ({scoring['n_batches']} batches, the "
        "last one possibly partial); transform: the bundle's `validate#preprocessing` at "
        f"{args.image_size}x{args.image_size} (`LoadImage2Dd -> ScaleIntensityd -> Resized(area) -> "
        "EnsureTyped`); network `EncoderClassifier(resnet18_encoder(pool=True), out_channels=4)`, random "
        f"weights, eval mode; autocast {'on' if args.amp else 'off'}. One run scores the whole pool; "
        f"{args.rounds} rounds, each running every variant once (order reversed in odd rounds).",
        "",
        "| variant | median run | min - max | n | per image | images/s | / bare | per-round ratios |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        ratio = "1 (reference)" if variant == "bare" else f"**{row['ratio']:.3f}**"
        rounds = "-" if variant == "bare" else ", ".join(f"{x:.3f}" for x in row["round_ratios"])
        lines.append(
            f"| {variant_label(variant)} | {_fmt_s(row['median'])} | {_fmt_s(row['min'])} - {_fmt_s(row['max'])} | "
            f"{row['n']} | {_fmt_ms(row['per_image'])} | {row['images_per_s']:.1f} | {ratio} | {rounds} |"
        )
    lines += [
        "",
        "Where a `score_pool` run goes (medians over runs, summed over the batches of a run; `setup` = from "
        "the call to the first request for a batch, incl. creating the loader's iterator, i.e. starting the "
        "workers; `data wait` = waiting for batches, first batch included; `model` = `score_pool`'s work on the "
        "batches: copy to the device, forward, softmax, copy back, ids; `tail` = end of the loop (incl. stopping "
        "the workers) and concatenation):",
        "",
        "| variant | run | setup | data wait (first batch) | model | tail | model / bare run | "
        "(run - model) / bare run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        if variant == "bare":
            continue
        s = row["split"]
        lines.append(
            f"| {variant_label(variant)} | {_fmt_s(row['median'])} | {_fmt_ms(s['setup'])} | {_fmt_s(s['wait'])} "
            f"({_fmt_ms(s['first_wait'])}) | {_fmt_s(s['work'])} | {_fmt_ms(s['tail'])} | {row['work_ratio']:.3f} | "
            f"{_pct(row['median'] - s['work'], bare['median'])} |"
        )
    pc = scoring["pieces"]
    fwd = pc["forward"]
    one = "1 intra-op thread"

    def with_1t(key: str) -> str:
        return f" ({one}: {_fmt_us(pc[key + '_1t'])})" if key + "_1t" in pc else ""

    lines += [
        "",
        f"The pieces measured directly on one batch of {int(pc['batch'])} (medians):",
        "",
        "| piece | time per batch | % of the forward pass |",
        "|---|---|---|",
        f"| forward pass (reference) | {_fmt_s(fwd)} | 100% |",
        f"| `score_pool`: copy of the host batch to the device | {_fmt_us(pc['copy'])} | {_pct(pc['copy'], fwd)} |",
        f"| `score_pool`: softmax in float32 + copy of the probabilities back | {_fmt_us(pc['post'])}{with_1t('post')} "
        f"| {_pct(pc['post'], fwd)} |",
        f"| loader: scoring transform, {_fmt_ms(pc['transform'])} per image x {int(pc['batch'])} | "
        f"{_fmt_s(pc['transform'] * pc['batch'])} | {_pct(pc['transform'] * pc['batch'], fwd)} |",
        f"| loader: `list_data_collate` of the batch | {_fmt_us(pc['collate'])}{with_1t('collate')} | "
        f"{_pct(pc['collate'], fwd)} |",
        "",
        f"Per batch (medians; the last batch of each run, possibly partial, is left out, and for the data wait "
        f"the first batch too): bare forward {_fmt_s(bare['batch'])}; "
        + "; ".join(
            f"{variant_label(v)}: model {_fmt_s(r['batch_work'])}, data wait {_fmt_ms(r['batch_wait'])}"
            for v, r in rows.items()
            if v != "bare"
        )
        + ".",
        "",
    ]
    check = scoring["check"]
    lines += [
        f"Check: `score_pool` returns a {check['shape'][0]} x {check['shape'][1]} array; on the first batch its "
        f"probabilities differ from `softmax(model(x))` of the bare loop by at most "
        f"{check['first_batch_vs_bare']:.1e}; "
        f"the probabilities of every timed `score_pool` run (pre-made batches and DataLoaders) differ from those of "
        f"the first by at most {check['runs_vs_first_run']:.1e}; ids in pool order in every run: "
        f"{'yes' if check['ids_in_order'] else '**no**'}.",
        "",
    ]
    if device.type == "cuda":
        lines += [
            "On CUDA the bare loop synchronises after every batch and `score_pool` waits for every batch when it "
            "copies the probabilities back; host batches are pinned and copied with `non_blocking=True`.",
            "",
        ]
    return lines


def round_lines(spec: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Markdown of the whole-round part, with a projection at the recipe's scale."""
    rounds = result["rounds"]
    r0, r1 = rounds[0], rounds[-1]
    overrides = " ".join(
        f"--{k} {shlex.quote(str(v).lower() if isinstance(v, bool) else str(v))}"
        for k, v in result["overrides"].items()
    )
    configs = "['" + "','".join(os.path.relpath(p, REPO_ROOT) for p in BUNDLE_CONFIGS) + "']"
    lines = [
        "## A whole pseudo-labeling round",
        "",
        f"The bundle `finetune.json` + `pseudolabel.json` runs in a subprocess through `monai.bundle.create_workflow` "
        "(the function behind `monai.bundle run`) with a fresh bundle root and a synthetic OCT demo of "
        f"{result['n_train']} training images ({spec['round_train_per_class']} per class; `labeled_fraction` 0.25: "
        f"{r0['n_labeled']} labeled, {r0['n_pool_after']} in the pool) and {result['n_val']} test images; "
        f"round 0 fine-tunes on the labeled set, round 1 scores the pool, adds {r1['n_new']} pseudo-labels and "
        "trains one epoch on labeled + pseudo-labeled images. Equivalent command line:",
        "",
        "```bash",
        f"python -m monai.bundle run --config_file \"{configs}\" --bundle_root <tmp> --dataset_dir <demo> {overrides}",
        "```",
        "",
        "Seconds from `rounds.csv` (`train_seconds`, `score_seconds`, `val_seconds`); `round` is the wall time "
        "between the ends of consecutive rounds (round 0: from the start of the rounds engine); `other` = round - "
        "train - score - validate (writing the round's weights and tables, selection, logging). Inside `train`: "
        "the `ValidationHandler` of `train#handlers` validates at every epoch end, counted apart here.",
        "",
        "| round | train images | train | of which: steps + data wait | of which: validation inside training | score "
        "(pool) | validate | other | round | score / round |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rounds:
        n_train_images = row["n_labeled"] + row["n_pseudo"]
        pool = row["n_pool_after"] + row["n_new"] if row["round"] > 0 else 0
        score = f"{_fmt_s(row['score_seconds'])} ({pool})" if row["round"] > 0 else "-"
        other = row["wall"] - row["train_seconds"] - row["score_seconds"] - row["val_seconds"]
        lines.append(
            f"| {row['round']} | {n_train_images} | {_fmt_s(row['train_seconds'])} | "
            f"{_fmt_s(row['train_steps'] + row['train_data'])} | {_fmt_s(row['train_eval'])} ({row['train_evals']}x) | "
            f"{score} | {_fmt_s(row['val_seconds'])} | {_fmt_s(other)} | {_fmt_s(row['wall'])} | "
            + (f"**{_pct(row['score_seconds'], row['wall'])}** |" if row["round"] > 0 else "- |")
        )
    lines.append("")
    # per-image rates of round 1, projected to the recipe's round 1 on OCT2017
    pool1 = r1["n_pool_after"] + r1["n_new"]
    train_images = (r1["n_labeled"] + r1["n_pseudo"]) * spec["round_epochs"]
    if pool1 > 0 and train_images > 0 and result["n_val"] > 0:
        train_rate = (r1["train_steps"] + r1["train_data"]) / train_images
        score_rate = r1["score_seconds"] / pool1
        val_runs = r1["train_evals"] + 1
        val_rate = (r1["train_eval"] + r1["val_seconds"]) / (result["n_val"] * val_runs)
        rec_train = (RECIPE["labeled"] + RECIPE["pseudo_per_round"]) * RECIPE["epochs"] * train_rate
        rec_score = RECIPE["pool"] * score_rate
        rec_val = RECIPE["val"] * (RECIPE["epochs"] + 1) * val_rate
        rec_total = rec_train + rec_score + rec_val
        lines += [
            f"Round 1: scoring takes {_pct(r1['score_seconds'], r1['wall'])} of the round here "
            f"({_fmt_ms(score_rate)} per pool image, against {_fmt_ms(train_rate)} per training image and epoch "
            f"and {_fmt_ms(val_rate)} per validation image). These shares depend on the sizes chosen above. At the "
            f"recipe's scale (OCT2017: {RECIPE['labeled']:,} labeled, {RECIPE['pool']:,} in the pool, "
            f"{RECIPE['pseudo_per_round']:,} pseudo-labels per round, {RECIPE['epochs']} epochs per round, "
            f"{RECIPE['val']} test images validated {RECIPE['epochs'] + 1} times per round), the same per-image "
            f"rates give for round 1 about {rec_train / 3600:.1f} h training, {rec_score / 3600:.1f} h scoring and "
            f"{rec_val / 60:.0f} min validation: **scoring ~{rec_score / rec_total * 100:.0f}% of the round** "
            "(an estimate from this run's rates, not a measurement).",
            "",
        ]
    return lines


def notes_lines(
    rows: dict[str, dict[str, Any]],
    pieces: dict[str, float],
    probe: dict[str, Any] | None,
    round_result: dict[str, Any] | None,
    device: str = "cpu",
) -> list[str]:
    """Observations computed from the numbers: noise level, where each variant's excess over bare goes."""
    bare = rows["bare"]
    lines = ["## Notes", ""]
    spread = (bare["max"] - bare["min"]) / bare["median"] * 100
    lines.append(
        f"- The bare runs range over {spread:.0f}% of their median ({_fmt_s(bare['min'])} - {_fmt_s(bare['max'])}): "
        "that is the noise level of a run on this machine during the benchmark; ratios of medians within that "
        "range of 1 are not a measurable difference."
    )
    own = pieces["copy"] + pieces["post"]
    lines.append(
        f"- What `score_pool` adds to the forward pass of a batch, measured directly (copy to the device, softmax "
        f"in float32, copy of the {NUM_CLASSES}-column probabilities back): {_fmt_us(own)} per batch, "
        f"{_pct(own, pieces['forward'])} of the forward pass. Batching, `inference_mode` and (with `--amp`) "
        "autocast are in place; what can cost more than 10% is the data loading."
    )
    loading = pieces["transform"] * pieces["batch"] + pieces["collate"]
    lines.append(
        f"- Loading a batch in the main process (the `num_workers=0` path) costs {_fmt_s(loading)}: "
        f"{_pct(loading, pieces['forward'])} of the forward pass, of which the transform "
        f"{_fmt_ms(pieces['transform'])} per image (JPEG decoding, intensity scaling, area resize to the "
        f"network's size) and the collation {_fmt_us(pieces['collate'])} per batch."
    )
    per_image_forward = rows["bare"]["per_image"]
    if per_image_forward > 0:
        limit = f"{(TARGET_RATIO - 1) * 100:.0f}%"
        lines.append(
            f"- Per image, the transform takes {_fmt_ms(pieces['transform'])} of one CPU core and the bare forward "
            f"pass {_fmt_ms(per_image_forward)} on `{device}`: with `num_workers=0` the loader stays within {limit} of "
            f"the bare pass only while the transform is below {limit} of the forward pass (here "
            f"{_pct(pieces['transform'], per_image_forward)}); hiding it behind the forward pass takes at least "
            f"{math.ceil(pieces['transform'] / per_image_forward)} worker(s) with cores of their own."
            + (
                " On a GPU the forward pass is far shorter than on this CPU, so there the loader decides the "
                "scoring throughput."
                if device == "cpu"
                else ""
            )
        )
    if probe is not None and probe["max"] > 1e-3:
        w0 = rows.get("loader-w0")
        compare = (
            f" Compare the `num_workers=0` data wait per batch during the runs ({_fmt_s(w0['batch_wait'])}) with the "
            f"transform + collation measured on their own ({_fmt_s(loading)})."
            if w0 is not None
            else ""
        )
        lines.append(
            f"- The machine was shared during the runs: a tiny OpenMP parallel region (`torch.exp` of 2^17 floats) "
            f"took {_fmt_us(probe['before'])} before the timed runs and a median {_fmt_us(probe['median'])} (max "
            f"{_fmt_us(probe['max'])}) just before each of them. When another process keeps a core busy, every "
            "parallel region waits for the intra-op thread that has no core; the small ones (collating a batch, "
            "tensor conversions in the transforms) pay this most, which inflates the `num_workers=0` data wait, and "
            f"every forward pass pays it too.{compare}"
        )
    for variant, row in rows.items():
        if variant == "bare":
            continue
        s = row["split"]
        outside = row["median"] - s["work"]  # setup + data wait + tail
        model_excess = s["work"] - bare["median"]
        verdict = "within" if row["ratio"] <= TARGET_RATIO else "**above**"
        if outside >= max(model_excess, 0.0):
            cause = "most of the difference is outside the model part (" + (
                "`score_pool`'s set-up and concatenation)" if variant == "premade" else "data loading, worker start-up)"
            )
        else:
            cause = (
                "most of the difference is in the model part, i.e. the same forward passes ran slower during "
                "these runs than during the bare ones (CPU time taken by other processes, DataLoader workers "
                "included), not in data loading or post-processing"
            )
        lines.append(
            f"- {variant_label(variant)}: {row['ratio']:.3f}x the bare loop ({verdict} the {TARGET_RATIO:.2f} "
            f"target). Outside the model part: {_pct(outside, bare['median'])} of a bare run (data wait "
            f"{_fmt_s(s['wait'])}, of which the first batch {_fmt_ms(s['first_wait'])}; setup {_fmt_ms(s['setup'])}); "
            f"model part {row['work_ratio']:.3f}x the bare run"
            + (f"; {cause}." if row["ratio"] > 1.0 else ".")
        )
    w0 = rows.get("loader-w0")
    if w0 is not None:
        lines.append(
            "- `PseudoLabelRounds` scores with `num_workers=0` unless `score_loader_kwargs` says otherwise, and "
            "`pseudolabel.json` does not set it: in the bundle the pool's JPEG decoding and resizing run in the "
            f"main process between forward passes, as in the `num_workers=0` row ({w0['ratio']:.3f}x)."
        )
    with_workers = [(v, r) for v, r in rows.items() if v.startswith("loader-w") and v != "loader-w0"]
    if with_workers and torch.get_num_threads() >= (os.cpu_count() or 1):
        parts = ", ".join(f"{r['work_ratio']:.3f}x ({v.split('-w')[1]} workers)" for v, r in with_workers)
        lines.append(
            "- With workers, the transforms run in other processes that share the CPU cores with PyTorch's "
            f"intra-op threads ({torch.get_num_threads()} threads on {os.cpu_count()} cores here), which would show "
            f"as a model part above 1x the bare run rather than as data wait; measured: {parts}. "
            + (
                f"The workers' transforms ({_fmt_s(loading)} per batch) are small against the forward pass; what "
                "remains is the workers' start-up and the first batch, paid once per round because "
                "`PseudoLabelRounds` builds a new loader for every round."
                if all(r["work_ratio"] <= 1.05 for _, r in with_workers)
                else "Here the workers' transforms slowed the forward passes down: fewer workers, or fewer intra-op "
                "threads, would leave the forward pass its cores."
            )
        )
    if round_result is not None:
        r1 = round_result["rounds"][-1]
        if r1["train_evals"]:
            lines.append(
                f"- `train_seconds` in `rounds.csv` includes {r1['train_evals']} validation pass(es) made by the "
                f"`ValidationHandler` of `train#handlers` ({_fmt_s(r1['train_eval'])} in round 1, "
                f"{_pct(r1['train_eval'], r1['train_seconds'])} of `train_seconds`), and `PseudoLabelRounds` then "
                f"validates once more (`val_seconds`): the validation set is evaluated {r1['train_evals'] + 1} times "
                "per round, the last two times with the same weights."
            )
    return lines + [""]


def build_section(
    args: argparse.Namespace,
    info: dict[str, Any],
    scoring: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    round_spec: dict[str, Any] | None,
    round_result: dict[str, Any] | None,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    elapsed: float,
    command: str,
) -> list[str]:
    """The whole Markdown section, starting with :data:`SECTION_HEADING`."""
    lines = [
        SECTION_HEADING,
        "",
        "Generated by `benchmarks/bench_pseudo_label_scoring.py` (see `benchmarks/README.md`); re-run it rather "
        "than editing this section by hand. It replaces only this section of the page; "
        "`bench_byol_pretraining.py` rewrites the whole page, so run this one after it.",
        "",
        f"- Date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['ram_gib']:.1f} GiB RAM, GPU: {info['gpu'] or 'none'}",
        f"- Software: Python {info['python']}, torch {info['torch']}"
        + (f" (CUDA {info['cuda']})" if info["cuda"] else "")
        + f", MONAI {info['monai']}, Ignite {info['ignite']}, {info['torch_threads']} torch threads; {info['os']}",
        f"- Device: `{args.device}`, mixed precision (autocast): {'on' if args.amp else 'off'}",
        f"- Sizes: pool of {scoring['n_images']} images at {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}, num_workers {', '.join(str(w) for w in args.num_workers)}, {args.rounds} rounds"
        + (
            f"; round benchmark: {round_spec['round_train_per_class'] * NUM_CLASSES} training images, "
            f"{round_spec['round_test_per_class'] * NUM_CLASSES} test images, {round_spec['round_pseudo_labels']} "
            f"pseudo-labels, 1 epoch per round, num_workers {round_spec['round_num_workers']}"
            if round_spec is not None
            else ""
        ),
        f"- Load average (1/5/15 min) at start {load[0][0]:.2f}/{load[0][1]:.2f}/{load[0][2]:.2f}, at end "
        f"{load[1][0]:.2f}/{load[1][1]:.2f}/{load[1][2]:.2f}; whole script {elapsed:.0f} s; contention probe (see "
        f"What is measured) {_fmt_us(scoring['probe']['before'])} before the timed runs, median "
        f"{_fmt_us(scoring['probe']['median'])} and max {_fmt_us(scoring['probe']['max'])} just before each",
        f"- Command: `{command}`",
        "",
        "## Summary",
        "",
        f"Target: scoring the pool with `score_pool` (data loading included) costs at most "
        f"{(TARGET_RATIO - 1) * 100:.0f}% more per image than the bare forward pass of the same model, i.e. "
        f"score_pool / bare <= {TARGET_RATIO:.2f}.",
        "",
        "| variant | per image | images/s | score_pool / bare | time outside the model part (% of bare run) "
        "| target met? |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        if variant == "bare":
            lines.append(
                f"| {variant_label(variant)} | {_fmt_ms(row['per_image'])} | {row['images_per_s']:.1f} | 1 | - | - |"
            )
        else:
            met = "yes" if row["ratio"] <= TARGET_RATIO else "**no**"
            outside = row["median"] - row["split"]["work"]
            lines.append(
                f"| {variant_label(variant)} | {_fmt_ms(row['per_image'])} | {row['images_per_s']:.1f} | "
                f"{row['ratio']:.3f} | {_fmt_ms(outside / scoring['n_images'])} per image "
                f"({_pct(outside, rows['bare']['median'])}) | {met} |"
            )
    loaders = [(v, r) for v, r in rows.items() if v.startswith("loader")]
    failed = [v for v, r in loaders if r["ratio"] > TARGET_RATIO]
    if loaders:
        allowed = (TARGET_RATIO - 1) * rows["bare"]["median"]
        direct_over = [
            (v, r) for v, r in loaders if r["ratio"] <= TARGET_RATIO and r["median"] - r["split"]["work"] > allowed
        ]
        borderline = (
            [
                "",
                "Borderline: measured directly, the time outside the model part exceeds "
                f"{(TARGET_RATIO - 1) * 100:.0f}% of a bare run for "
                + ", ".join(
                    f"{variant_label(v)} ({_pct(r['median'] - r['split']['work'], rows['bare']['median'])})"
                    for v, r in direct_over
                )
                + "; its ratio of medians passes only because its forward passes happened to run slightly faster "
                "than the bare ones.",
            ]
            if direct_over
            else []
        )
        worst = max(loaders, key=lambda t: t[1]["ratio"])
        worst_text = f"worst ratio {worst[1]['ratio']:.3f}: {variant_label(worst[0])}"
        lines += [
            "",
            f"**Target met** by every DataLoader variant ({worst_text})."
            if not failed
            else f"**Target NOT met** by: {', '.join(variant_label(v) for v in failed)} ({worst_text}).",
            *borderline,
            "",
            "The time outside the model part (data wait, worker start-up, end of the loop; everything but "
            "`score_pool`'s work on the batches) is measured directly in each run and does not depend on how fast "
            "the forward passes happened to run, so it is the less noisy measure of what scoring adds to the bare "
            "forward pass; the ratio of medians also carries the run-to-run noise of the forward pass (see Notes).",
        ]
    if round_result is not None:
        r1 = round_result["rounds"][-1]
        other = r1["wall"] - r1["train_seconds"] - r1["score_seconds"] - r1["val_seconds"]
        lines += [
            "",
            f"Pseudo-labeling round 1 (sizes below): {_fmt_s(r1['wall'])} = train {_fmt_s(r1['train_seconds'])} "
            f"({_pct(r1['train_seconds'], r1['wall'])}) + score {_fmt_s(r1['score_seconds'])} "
            f"(**{_pct(r1['score_seconds'], r1['wall'])}**) + validate {_fmt_s(r1['val_seconds'])} "
            f"({_pct(r1['val_seconds'], r1['wall'])}) + other {_fmt_s(other)}.",
        ]
    lines.append("")
    lines += scoring_lines(args, scoring, rows)
    if round_result is not None and round_spec is not None:
        lines += round_lines(round_spec, round_result)
    lines += notes_lines(rows, scoring["pieces"], scoring.get("probe"), round_result, args.device)
    lines += [
        "## What is measured",
        "",
        "- **bare loop**: the pool's images already transformed, collated and on the device; per batch "
        "`with torch.inference_mode(), torch.autocast(...): model(x)` in eval mode, nothing else (CUDA "
        "synchronised after each batch). The run time covers the whole pool.",
        "- **`score_pool`, pre-made batches**: `score_pool` over the same batches held in host memory (pinned on "
        "CUDA) as dicts `{image, id}`: what the function adds to the forward pass without any data loading.",
        "- **`score_pool`, DataLoader**: `score_pool` over a `monai.data.DataLoader(Dataset(pool, "
        "validate#preprocessing), batch_size, shuffle=False, num_workers, pin_memory on CUDA)`, the loader "
        "`PseudoLabelRounds` builds for each round (a new loader per round, so worker start-up is counted); the "
        "JPEGs are read from disk on every run (the page cache holds them after the first).",
        "- Per image = median run time / pool size; ratio = median run / median bare run, all variants "
        "interleaved in one process so that a noisy machine slows all of them.",
        "- **contention probe**: median time of `torch.exp` over 2^17 floats on the CPU, taken before the timed "
        "runs and before each of them. It opens one OpenMP parallel region: tens of microseconds on idle cores, "
        "milliseconds when another process keeps a core busy and the region waits for the intra-op thread that "
        "has no core.",
        "- **round**: the real bundle in a subprocess, times from `rounds.csv` and from Ignite events of the "
        "bundle's trainer (`GET_BATCH_*`, `ITERATION_*`) and evaluator (`STARTED`/`COMPLETED`).",
        "",
    ]
    return lines


def write_section(path: Path, lines: list[str]) -> None:
    """Replace this benchmark's section of ``path`` (from :data:`SECTION_HEADING` on), keeping what precedes it."""
    head = ""
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        index = text.find("\n" + SECTION_HEADING + "\n")
        if text.startswith(SECTION_HEADING + "\n"):
            head = ""
        elif index >= 0:
            head = text[: index + 1]
        else:
            head = text
        head = head.rstrip("\n") + "\n\n" if head.strip() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset sizes take the per-device defaults of ``DEFAULTS``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast in every variant and in the bundle round (default off)")
    p.add_argument("--images", type=int, help="pool size of the scoring benchmark (cpu 128, cuda 2048)")
    p.add_argument("--batch-size", type=int, default=32, help="scoring and training batch size (32, the bundle's)")
    p.add_argument("--image-size", type=int, default=224, help="H = W after Resized (224, the bundle's)")
    p.add_argument(
        "--num-workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers, one scoring variant each"
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds of the scoring variants (cpu 3, cuda 5)")
    p.add_argument("--round-train-per-class", type=int, help="training images per class of the round's demo (cpu 24)")
    p.add_argument("--round-test-per-class", type=int, help="test images per class of the round's demo (cpu 4)")
    p.add_argument("--round-pseudo-labels", type=int, help="num_pseudo_labels of the round (cpu 8)")
    p.add_argument("--round-num-workers", type=int, help="num_workers of the bundle round (cpu 0, cuda 2)")
    p.add_argument("--no-round", action="store_true", help="skip the whole-round measurement")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="Markdown page to update")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        return args
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if min(args.images, args.batch_size, args.image_size, args.rounds) < 1 or min(args.num_workers) < 0:
        p.error("--images, --batch-size, --image-size and --rounds must be >= 1, --num-workers >= 0")
    if args.round_train_per_class < 4 or args.round_test_per_class < 1 or args.round_pseudo_labels < 1:
        p.error("--round-train-per-class >= 4, --round-test-per-class >= 1, --round-pseudo-labels >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run both measurements and update the page."""
    args = parse_args(argv)
    if args._child:
        _child_main(args._child)
        return
    started = time.perf_counter()
    load_start = os.getloadavg()
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], os.getcwd()), *sys.argv[1:]])
    info = machine_info(torch.device(args.device))
    round_spec: dict[str, Any] | None = None
    round_result: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench_pl_") as work_dir:
        scoring = measure_scoring(args, work_dir)
        rows = summarise_scoring(scoring)
        for variant, row in rows.items():
            _log(f"{variant}: {_fmt_ms(row['per_image'])} per image, ratio {row['ratio']:.3f}")
        if not args.no_round:
            round_spec = {
                "device": args.device,
                "amp": args.amp,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "round_train_per_class": args.round_train_per_class,
                "round_test_per_class": args.round_test_per_class,
                "round_pseudo_labels": args.round_pseudo_labels,
                "round_num_workers": args.round_num_workers,
                "round_epochs": 1,
            }
            _log("round: running the pseudo-labeling bundle (round 0 and round 1) in a subprocess")
            round_result = run_round_child(round_spec, work_dir)
            for row in round_result["rounds"]:
                _log(
                    f"round {row['round']}: train {row['train_seconds']:.1f} s, score {row['score_seconds']:.1f} s, "
                    f"val {row['val_seconds']:.1f} s, wall {row['wall']:.1f} s"
                )
    elapsed = time.perf_counter() - started
    lines = build_section(
        args, info, scoring, rows, round_spec, round_result, (load_start, os.getloadavg()), elapsed, command
    )
    write_section(args.out, lines)
    _log(f"updated {args.out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
