"""The multi-crop views benchmark: its smallest case runs, both paths give the same views, the page gets its section."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench_multi_crop_views as B  # benchmarks/, on the path through setup.cfg's pytest `pythonpath`

TINY = ["--device", "cpu", "--threads", "1", "--steps", "1", "--warmup", "1", "--rounds", "1", "--batch", "2",
        "--view-batches", "1", "--num-images", "4", "--source-size", "32", "--global-size", "16", "--local-size", "8",
        "--local-views", "2", "--dino-out", "64", "--num-workers", "0"]


def test_smallest_case_measures_both_paths_and_writes_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# kept\n", encoding="utf-8")
    result = B.main([*TINY, "--backbones", "resnet", "--write", "--out", str(page)])

    assert set(result["views"]) == {"cpu", "device"}
    for rates in result["views"].values():
        assert set(rates) == {"host", "prepare", "total"}
        assert all(rate > 0 for rate in rates.values())
        assert rates["total"] < min(rates["host"], rates["prepare"])  # both parts together are slower than each
    expected = [(2, 3, 16, 16)] * 2 + [(2, 3, 8, 8)] * 2  # 2 global + 2 local crops of a batch of 2
    assert result["shapes"] == {"cpu": expected, "device": expected}

    steps = result["steps"]["resnet"]
    assert list(steps) == list(B.STEP_VARIANTS)
    assert steps["bare"]["ratio"] == 1.0 and steps["bare"]["wait"] is None
    for variant in ("cpu-views", "device-views"):
        assert steps[variant]["rate"] > 0 and steps[variant]["step"].n == 1
        assert steps[variant]["wait"] is not None and steps[variant]["prepare"] is not None

    text = page.read_text(encoding="utf-8")
    assert text.startswith("# kept\n")
    assert "<!-- bench:multi_crop_views -->" in text and text.rstrip().endswith("<!-- /bench:multi_crop_views -->")
    for heading in ("## View making alone", "## Training step, resnet", "## What is measured"):
        assert heading in text
    assert "## Training step, vit" not in text
    assert "View shapes of a batch: the same on both paths" in text


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        B.parse_args([*TINY, "--source-size", "12"])  # smaller than the 16-pixel global crops
    with pytest.raises(SystemExit):
        B.parse_args([*TINY, "--view-batches", "0"])
    args = B.parse_args(TINY)
    assert (args.global_size, args.local_size, args.local_views, args.backbones) == (16, 8, 2, ["resnet", "vit"])
    assert B.view_keys(args) == ("view1", "view2", "view3", "view4")
