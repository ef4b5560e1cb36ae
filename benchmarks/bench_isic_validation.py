"""ISIC validation speed: the validation inside ``train.json`` against ``evaluate.json``'s evaluator, same images.

Both come from the bundle's configs, parsed as ``monai.bundle run`` parses them, on one synthetic ISIC 2017-layout
validation split (``make_isic_demo``: GPU 150 images of 768-1365 x 576-1024 pixels, as many as ISIC 2017's
validation split; CPU 8 images of 480-640 x 360-480) and one network (``train.json``'s cross-teaching pair,
randomly initialised, saved as ``models/model.pt`` for ``evaluate.json``):

- **validation inside training**: ``train.json``'s ``validate#evaluator`` with all its handlers (TensorBoard,
  overlay pictures, best-model saver, model settings), as its ``ValidationHandler`` runs it after an epoch;
- **evaluate.json**: its ``evaluator`` on ``--split val --evaluate_on_selection_split True`` with its report writer.

The variants alternate round by round (``harness.interleave``). Target: the validation takes at most 1.1 x the
time of ``evaluate.json`` (issue 21: validation during training runs at the speed of ``evaluate.json``). The script
also checks that the validation's ``val_iou`` is the report's ``mean_iou`` (the same evaluation).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

import harness as H

SECTION = "isic_validation"
TARGET_RATIO = 1.10  # validation time / evaluate.json time
CONFIGS = H.REPO_ROOT / "bundles" / "isic_cross_teaching" / "configs"
VARIANTS = {"evaluate": "`evaluate.json`'s `evaluator` (reference)",
            "validation": "`train.json`'s `validate#evaluator` (validation inside training)"}
GPU_COMMAND = "python benchmarks/bench_isic_validation.py --device cuda --amp --write"
DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"images": 150, "height": (576, 1024), "width": (768, 1365), "working_size": 480, "patch_size": 224,
             "swin_feature_size": 24, "rounds": 3, "num_workers": -1},
    "cpu": {"images": 8, "height": (360, 480), "width": (480, 640), "working_size": 480, "patch_size": 224,
            "swin_feature_size": 24, "rounds": 3, "num_workers": -1},
}


def _parsed(configs: Path, config: str, settings: dict[str, Any], *keys: str) -> list[Any]:
    """``keys`` of ``<configs>/<config>`` parsed with ``settings`` (as command-line overrides)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(configs / config))
    for key, value in settings.items():
        parser[key] = value
    return [parser.get_parsed_content(key) for key in keys]


def build(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The demo data, the saved network and both evaluators."""
    from monai_ssl.data import make_isic_demo
    from monai_ssl.utils import default_num_workers

    data = make_isic_demo(folder / "ISIC2017", n_train=2, n_val=args.images, n_test=1, height=args.height,
                          width=args.width)
    workers = default_num_workers() if args.num_workers < 0 else args.num_workers
    common = {"bundle_root": str(folder / "bundle"), "dataset_dir": str(data), "working_size": args.working_size,
              "patch_size": args.patch_size, "swin_feature_size": args.swin_feature_size, "num_workers": workers,
              "device": f"$torch.device('{args.device}')", "amp": bool(args.amp)}
    torch.manual_seed(0)
    validator, network = _parsed(args.configs, "train.json", {**common, "existing_checkpoints": "replace"}, "validate#evaluator",
                                 "network")
    (folder / "bundle" / "models").mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), folder / "bundle" / "models" / "model.pt")
    report_dir = folder / "eval"
    (evaluator,) = _parsed(args.configs, "evaluate.json", {**common, "split": "val", "evaluate_on_selection_split": True,
                                             "output_dir": str(report_dir), "overwrite": True}, "evaluator")
    return {"validation": validator, "evaluate": evaluator, "report": report_dir / "metrics.json", "workers": workers}


def measure(args: argparse.Namespace, session: H.Session) -> dict[str, Any]:
    """Interleaved rounds of the two evaluations; seconds per run and the scores of each."""
    with tempfile.TemporaryDirectory(prefix="bench_isic_val_") as tmp:
        parts = build(args, Path(tmp))
        scores: dict[str, float] = {}

        def run(name: str) -> float:
            seconds, _ = H.timed(parts[name].run, args.device)
            if name == "validation":
                scores["val_iou"] = float(parts[name].state.metrics["val_iou"])
            else:
                scores["mean_iou"] = float(json.loads(parts["report"].read_text())["mean_iou"])
            return seconds

        for name in VARIANTS:  # warm-up: first model loads, allocator, worker start-up code paths
            run(name)
        runs = H.interleave({name: functools.partial(run, name) for name in VARIANTS}, args.rounds, session.probe)
    return {"runs": runs, "scores": scores, "workers": parts["workers"]}


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    return str(path.resolve().relative_to(H.REPO_ROOT)) if path.resolve().is_relative_to(H.REPO_ROOT) else str(path)


def lines_of(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Markdown of the measurement."""
    stats = {name: H.Stats.of(r) for name, r in result["runs"].items()}
    reference = stats["evaluate"].median
    rows = [[VARIANTS[n], H.fmt_time(s.median), f"{H.fmt_time(s.min)} - {H.fmt_time(s.max)}", s.n,
             H.fmt_time(s.median / args.images), "1 (reference)" if n == "evaluate" else f"**{s.median / reference:.3f}**"]
            for n, s in stats.items()]
    ratio = stats["validation"].median / reference
    per_round = ", ".join(f"{v / e:.3f}" for v, e in zip(result["runs"]["validation"], result["runs"]["evaluate"]))
    same = abs(result["scores"]["val_iou"] - result["scores"]["mean_iou"]) <= 1e-9
    return [
        "## Summary", "",
        *H.table(["target", "measured", "met?"],
                 [[f"validation inside training <= {TARGET_RATIO:.2f} x the time of `evaluate.json` on the same images",
                   f"{ratio:.3f}", H.verdict(ratio <= TARGET_RATIO)]]),
        "", *H.table(["variant", "median run", "min - max", "n", "per image", "time / evaluate.json"], rows), "",
        f"- Per round (validation / evaluate.json): {per_round}.",
        f"- Same evaluation: the validation's `val_iou` {result['scores']['val_iou']:.6f}, the report's `mean_iou` "
        f"{result['scores']['mean_iou']:.6f}: {'equal' if same else '**different**'}.",
        f"- Noise: `evaluate.json`'s runs range over {stats['evaluate'].spread:.0%} of their median.", "",
        "## What is measured", "",
        f"- Data: `make_isic_demo` with {args.images} validation images of {args.width[0]}-{args.width[1]} x "
        f"{args.height[0]}-{args.height[1]} pixels (JPEG, masks PNG); settings `working_size {args.working_size}`, "
        f"`patch_size {args.patch_size}`, `swin_feature_size {args.swin_feature_size}`, `num_workers "
        f"{result['workers']}`, `inference_network cnn`; the pair randomly initialised (`torch.manual_seed(0)`); "
        f"configs from `{_shown(args.configs)}`.",
        "- A run is one `evaluator.run()` (all images, loader workers started anew as in training, every handler "
        "attached by the config), the device synchronised before and after; one warm-up run of each first.",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    """Measure, print the page section and, with ``--write``, put it into the page."""
    p = H.parser(__doc__.split("\n\n")[0], DEFAULTS)
    p.add_argument("--configs", type=Path, default=CONFIGS,
                   help="folder of the train.json and evaluate.json to compare (default: the bundle's; e.g. an "
                        "earlier version's, from `git show`)")
    args = H.parse(p, argv, DEFAULTS)
    if args.patch_size % 32 or args.patch_size < 64 or args.patch_size > args.working_size:
        p.error("--patch-size must be a multiple of 32 (SwinUNETR), at least 64 and at most --working-size")
    session = H.Session(args.device, "fp16 autocast (the bundle's amp)" if args.amp else "off")
    lines = lines_of(measure(args, session), args)
    sizes = f"{args.images} validation images, {args.rounds} rounds of each variant"
    lines = session.header("ISIC validation inside training against evaluate.json", sizes, GPU_COMMAND) + lines
    print("\n".join(lines))
    if args.write:
        H.write_section(SECTION, lines, args.out)


if __name__ == "__main__":
    main()
