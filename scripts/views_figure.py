"""Draw ``docs/images/byol_views_cpu_vs_gpu.png``: the BYOL views of the CPU and the GPU path for one seed.

Run from the repository root: ``python scripts/views_figure.py``. It makes a few synthetic OCT demo
B-scans (of different sizes) in a temporary folder, draws ``T`` and ``T'`` for each with ``BYOLViewsd`` (CPU path, image by
image) and with ``BYOLViewParamsd`` + ``apply_view_params`` (GPU path, batched; run here on the CPU),
and puts them side by side with the largest difference in the title.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from monai.transforms import PadListDataCollate, ScaleIntensity

from monai_ssl.data import make_oct_demo
from monai_ssl.transforms import BYOLViewParamsd, BYOLViewsd, CompactUint8d, LoadImage2Dd, apply_view_params, scale_intensity_batch
from monai_ssl.utils import atomic_path

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "byol_views_cpu_vs_gpu.png"


def _images(count: int) -> list[torch.Tensor]:
    """``count`` demo B-scans of different sizes, ``uint8`` ``(1, H, W)`` each."""
    with tempfile.TemporaryDirectory() as tmp:
        root = make_oct_demo(Path(tmp) / "OCT2017", n_train_per_class=2, n_test_per_class=1, seed=0)
        files = sorted((root / "train").rglob("*.jpeg"))[::2][:count]
        load, compact = LoadImage2Dd(keys="image", channels=1), CompactUint8d(keys="image")
        return [compact(load({"image": str(f)}))["image"] for f in files]


def main(seed: int = 7, count: int = 4, out: Path = OUT) -> None:
    """Write the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = _images(count)
    cpu = BYOLViewsd(keys="image", spatial_size=224).set_random_state(seed)
    params = BYOLViewParamsd(keys="image", spatial_size=224).set_random_state(seed)
    cpu_views = [cpu({"image": ScaleIntensity(minv=0.0, maxv=1.0)(img.float())}) for img in images]
    batch = PadListDataCollate(method="end", mode="edge")([params({"image": img}) for img in images])  # the bundles' collate
    scaled = scale_intensity_batch(batch["image"].as_tensor())
    gpu_views = {k: apply_view_params(scaled, batch[f"{k}_params"]) for k in ("view1", "view2")}
    columns = [("T, CPU path", "view1", False), ("T, GPU path", "view1", True), ("T', CPU path", "view2", False), ("T', GPU path", "view2", True)]
    worst = max(float((torch.stack([c[k] for c in cpu_views]) - gpu_views[k]).abs().max()) for k in ("view1", "view2"))
    figure = Figure(figsize=(2.2 * len(columns), 2.2 * count + 0.6))
    FigureCanvasAgg(figure)
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        for col, (title, key, batched) in enumerate(columns):
            view = gpu_views[key][row] if batched else cpu_views[row][key]
            ax = axes[row][col]
            ax.imshow(view[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
    figure.suptitle(f"Same seed, both paths (largest pixel difference {worst:.1e})", fontsize=11)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    print(f"wrote {out} (largest difference {worst:.2e})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    main(args.seed, args.count, args.out)
