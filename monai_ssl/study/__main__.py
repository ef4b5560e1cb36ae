"""Command line of the label-efficiency study: ``python -m monai_ssl.study --bundle ... --output_dir ...``.

``--protocols`` picks the rows: in the OCT bundle ``supervised`` and, per pre-training method ``<m>``
(``byol``, ``byol_plus``, ``dino``, ``cass``), ``<m>_finetune``, ``<m>_linear_probe`` and
``<m>_pseudolabel``; without it the study.json's ``default_protocols`` run (OCT: supervised and the
BYOL ones). Supervised vs BYOL vs DINO vs CASS in one command::

    python -m monai_ssl.study --bundle bundles/oct_byol_pseudolabel --dataset_dir ../shared/data/breastmnist.npz \\
        --protocols supervised,byol_finetune,dino_finetune,cass_finetune --output_dir study/methods
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monai_ssl.utils import configure_logging

from .bundle_study import bundle_study, parse_overrides

EXAMPLE = """example:
  python -m monai_ssl.study --bundle bundles/oct_byol_pseudolabel --dataset_dir ../shared/data/breastmnist.npz \\
      --fractions 0.01,0.1,1.0 --seeds 0,1,2,3,4 --num_epochs 20 --output_dir study/breastmnist \\
      --override image_size=64 --override batch_size=32

Compare pre-training methods (BYOL, DINO, CASS) against the supervised baseline in one study; each
method pre-trains once per seed, for the protocols that use it:
  python -m monai_ssl.study --bundle bundles/oct_byol_pseudolabel --dataset_dir ../shared/data/breastmnist.npz \\
      --protocols supervised,byol_finetune,dino_finetune,cass_finetune --fractions 0.01,0.1,1.0 \\
      --seeds 0,1,2 --output_dir study/breastmnist_methods

Fraction 0 is the column of the label-free protocols (study.json "label_free": true): PiCIE, trained
with no labels at all, against cross-teaching and the supervised U-Net (S4MI's Figure 5 layout):
  python -m monai_ssl.study --bundle bundles/isic_cross_teaching --dataset_dir PATH \\
      --protocols picie,supervised,cross_teaching --fractions 0,0.1,0.3,0.5,0.7,1.0 --output_dir study/isic

--num_steps N instead of --num_epochs gives every label budget the same number of optimizer steps
(e.g. --num_steps 30000 on ISIC, as the cross-teaching paper), so budgets compare at equal training.

Each seed pre-trains its own encoder (seeds x one pre-training), so the confidence intervals
cover pre-training and fine-tuning; --shared_pretraining pre-trains once (seed 0) for every seed,
faster, and the reports then say that the intervals cover fine-tuning only.

Run the same command again to continue: finished cells are kept, a cell that was killed halfway
runs again. A study folder resumes only in its own pre-training mode (one made with shared
pre-training, the former default, needs --shared_pretraining). Writes results.csv (every cell),
results.md (mean and 95% CI per protocol and label budget, on the test split) and results.png
into --output_dir.
"""

DEPRECATED_PER_SEED = (
    "--pretrain_per_seed is deprecated and does nothing: each seed pre-trains its own encoder by default now "
    "(--shared_pretraining pre-trains once for every seed)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its ``--help`` is the command's documentation)."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_ssl.study",
        description="What do pre-training and pseudo-labels buy on your data? Runs a bundle's protocols "
        "(configs/study.json) over label fractions x seeds and reports test metrics with 95% confidence intervals.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="bundle folder with configs/study.json")
    parser.add_argument("--output_dir", required=True, help="folder of the study (cells, reports); reuse it to resume")
    parser.add_argument("--dataset_dir", help="dataset of every run (default: the bundle's demo data)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--fractions", help="comma-separated label fractions in [0, 1] (default: the study.json's "
                        "default_fractions, else 0.1,0.5,1.0); 0 (no labels) is the column of the label-free "
                        "protocols (study.json \"label_free\": true, e.g. picie), which run only there, the others "
                        "only above 0")
    budget.add_argument("--shots", help="comma-separated labeled images per class, instead of --fractions")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the study.json's default_seeds, else 0,1,2)")
    parser.add_argument("--protocols", help="comma-separated protocols of study.json (default: its "
                        "default_protocols, else all); per pre-training method <m>_finetune, <m>_linear_probe, "
                        "<m>_pseudolabel for m in byol, byol_plus, dino, cass (OCT bundle), e.g. "
                        "supervised,byol_finetune,dino_finetune,cass_finetune")
    parser.add_argument("--metrics", help="comma-separated metrics of study.json to report (default: all)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--num_epochs", type=int, help="epochs of every training (default: the bundle's); a smaller "
                        "label budget then trains fewer optimizer steps")
    length.add_argument("--num_steps", type=int, help="optimizer steps of every training instead of --num_epochs "
                        "(whole epochs, at least this many steps), so every label budget trains equally long, e.g. "
                        "30000 as the cross-teaching paper")
    parser.add_argument("--pretrain_epochs", type=int,
                        help="epochs of the pre-training (default: --num_epochs, else the bundle's)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--shared_pretraining", action="store_true",
                      help="pre-train once (seed 0) and start every seed's cells from that encoder, instead of "
                      "once per seed (default); faster, but the intervals then cover fine-tuning only")
    mode.add_argument("--pretrain_per_seed", action="store_true",
                      help="deprecated, does nothing: one pre-training per seed is the default now")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE|JSON",
                        help="a setting for every config of every run, e.g. image_size=64 or "
                        "'{\"image_size\": 64, \"batch_size\": 32}'; repeatable")
    parser.add_argument("--study_file", default="configs/study.json", help="study description inside the bundle")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study; 0 when every cell ended (ok or skipped), 1 when some failed, 2 on bad settings."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pretrain_per_seed:
        print(DEPRECATED_PER_SEED, file=sys.stderr)
    configure_logging()
    try:
        run = bundle_study(
            bundle=args.bundle,
            output_dir=args.output_dir,
            dataset_dir=args.dataset_dir,
            fractions=args.fractions,
            shots=args.shots,
            seeds=args.seeds,
            protocols=args.protocols,
            num_epochs=args.num_epochs,
            num_steps=args.num_steps,
            pretrain_epochs=args.pretrain_epochs,
            overrides=parse_overrides(args.override),
            metrics=args.metrics,
            shared_pretraining=args.shared_pretraining,
            study_file=args.study_file,
        )
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
