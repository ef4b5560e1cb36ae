"""The PiCIE benchmark: its smallest case runs end to end and writes its section; the memory arithmetic; options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import bench_picie as B  # benchmarks/, on the path through setup.cfg's pytest `pythonpath`
import bench_picie_memory as MEM

SMALLEST = ["--device", "cpu", "--threads", "1", "--smallest"]


@pytest.mark.slow  # about 16 s, of which the two memory-measuring child processes take half; run with -m slow
def test_smallest_case_measures_every_variant_and_writes_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nhand-written text\n", encoding="utf-8")
    out = B.main([*SMALLEST, "--write", "--out", str(page)])
    assert sorted(out["training"]) == ["PiCIETrainer", "bare"]
    assert sorted(out["clustering"]) == ["bare", "cluster_epoch"]
    for runs in (*out["training"].values(), *out["clustering"].values()):
        assert len(runs) == 2 and all(v > 0 for v in runs)  # 2 rounds: it/s, or seconds per epoch
    assert [m["images"] for m in out["measured"]] == [8, 16]
    for m in out["measured"]:
        assert "error" not in m and m["growth_mib"] >= 0
        assert m["peak_mib"] == pytest.approx(m["before_mib"] + m["growth_mib"])
        assert m["kmeans"] == 3 * 128 * 16 * 4  # init_points 128 rows of 16 floats: bounded at 8 and 16 images
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nhand-written text\n")  # the rest of the page kept
    section = text[text.index("<!-- bench:picie -->"):]
    assert section.rstrip().endswith("<!-- /bench:picie -->")
    for expected in ("# PiCIE (ISIC bundle)", "## Training step", "| PiCIETrainer |", "## Clustering step",
                     "| cluster_epoch |", "## Feature bank memory, computed", "## Feature bank memory, measured",
                     "growth of the peak resident set", B.GPU_COMMAND, "These are CPU figures"):
        assert expected in section


def test_memory_table_all_features_grow_with_the_images_while_the_held_bytes_stay_bounded() -> None:
    # 56x56 = 3,136 pixels per image; init_points 300,000 is reached from 96 images on
    rows = [MEM.bank_bytes(n, 128, 56, 300_000, 64) for n in (100, 1_000, 10_000)]
    assert [r["all_features"] for r in rows] == [n * 3136 * 128 * 4 for n in (100, 1_000, 10_000)]
    assert all(r["kmeans"] == 3 * 300_000 * 128 * 4 for r in rows)  # bounded by init_points
    assert all(r["batch"] == 2 * 64 * 128 * 3136 * 4 for r in rows)
    assert [r["labels"] for r in rows] == [n * 2 * 3136 for n in (100, 1_000, 10_000)]  # uint8, both views
    assert rows[2]["held"] - rows[0]["held"] == 9_900 * 2 * 3136  # only the label bank grows
    assert rows[2]["held"] < rows[2]["all_features"] / 20
    small = MEM.bank_bytes(2, 64, 4, 1_000, 8)  # 32 pixels < init_points: all rows held, batch of 2 images
    assert (small["kmeans"], small["batch"], small["labels"]) == (3 * 32 * 64 * 4, 2 * 2 * 64 * 16 * 4, 2 * 2 * 16)


def test_bare_kmeans_separates_two_clusters() -> None:
    rows = torch.cat([torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * 0.1 + 5,
                      torch.randn(30, 3, generator=torch.Generator().manual_seed(1)) * 0.1 - 5])
    centroids, counts = B.lloyd(rows, 5)
    assert sorted(counts.tolist()) == [30, 50]
    assert torch.allclose(centroids.abs(), torch.full((2, 3), 5.0), atol=0.1)
    labels = B.nearest(rows, centroids)
    assert labels[:50].unique().numel() == 1 and labels[50:].unique().numel() == 1 and labels[0] != labels[50]


def test_synthetic_batches_are_made_on_demand_and_counted_like_a_loader() -> None:
    batches = MEM.SyntheticBatches(10, 4, 32, torch.device("cpu"))
    assert len(batches) == 3 and len(batches.dataset) == 10
    made = list(batches)
    assert [b["image"].shape[0] for b in made] == [4, 4, 2]
    assert torch.equal(torch.cat([b["index"] for b in made]), torch.arange(10))
    assert torch.equal(list(batches)[1]["image"], made[1]["image"])  # the same images on every pass
    assert len(B.Batches(made[:1], 4).dataset) == 4


def test_defaults_and_bad_options() -> None:
    args = B.parse_args(["--device", "cpu"])
    assert (args.backbone, args.image_size, args.batch, args.feature_size) == ("resnet18", 64, 8, 128)
    assert args.table_images == (100, 1_000, 10_000) and args.table_features == (64, 128, 256)
    assert B.DEFAULTS["cuda"]["image_size"] == 224 and B.DEFAULTS["cuda"]["init_points"] == 300_000
    assert B.BACKBONES["cuda"] == "resnet34"
    with pytest.raises(SystemExit):
        B.parse_args(["--device", "cpu", "--steps", "0"])
    with pytest.raises(SystemExit):
        B.parse_args(["--device", "cpu", "--image-size", "48"])
    with pytest.raises(SystemExit):
        B.parse_args(["--device", "cpu", "--backbone", "resnet50"])
