"""The skin-lesion classification benchmark: its quick case runs end to end and writes its section; options checked."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench_skin_lesion_classification as B  # benchmarks/, on the path through setup.cfg's pytest `pythonpath`

SMALLEST = ["--device", "cpu", "--threads", "1", "--smallest"]


def test_smallest_case_measures_every_variant_and_writes_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nhand-written text\n", encoding="utf-8")
    out = B.main([*SMALLEST, "--write", "--out", str(page)])
    (result,) = out["results"]
    assert result["encoder"] == "resnet18"
    assert sorted(result["runs"]) == sorted(["bare fine-tuning", "SupervisedTrainer", "bare evaluation",
                                             "SupervisedEvaluator", "saliency gradient", "saliency gradcam"])
    assert all(len(v) == 1 and v[0] > 0 for v in result["runs"].values())  # one round, images/s
    (memory,) = out["memory"]
    assert "error" not in memory and memory["encoder"] == "resnet18"
    assert memory["growth_mib"] > 0 and memory["peak_mib"] == pytest.approx(memory["before_mib"] + memory["growth_mib"])
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nhand-written text\n")  # the rest of the page kept
    section = text[text.index("<!-- bench:skin_lesion_classification -->"):]
    assert section.rstrip().endswith("<!-- /bench:skin_lesion_classification -->")
    for expected in ("# Skin-lesion classification benchmark", "| resnet18 |", "trainer / bare (>= 0.9)",
                     "## Peak memory of a fine-tuning step, batch 4 at 32 px", B.GPU_COMMAND, "CacheDataset"):
        assert expected in section


def test_ratio_is_the_ratio_of_medians_with_every_round() -> None:
    runs = {"a": [10.0, 20.0, 30.0], "b": [20.0, 20.0, 20.0]}
    value, text = B.ratio(runs, "a", "b")
    assert value == pytest.approx(1.0) and text == "1.00 (rounds 0.50, 1.00, 1.50)"
    assert B.rate_cell([1.0, 3.0, 2.0]) == "2 (1-3)"


def test_saliency_methods_follow_the_network_kind() -> None:
    assert B.saliency_methods("resnet50") == ("gradient", "gradcam")
    assert B.saliency_methods("vit_b16") == ("gradient", "vit_gradcam")


def test_defaults_and_bad_options() -> None:
    args = B.parse_args(["--device", "cpu"])
    assert (args.batch_size, args.image_size, args.memory_batch, args.memory_size) == (16, 224, 16, 224)
    assert args.encoders == ["resnet18", "resnet50", "vit_b16"] and args.memory_encoders == ["resnet50", "vit_b16"]
    assert B.parse_args(["--device", "cpu", "--memory-encoders", ""]).memory_encoders == []
    with pytest.raises(SystemExit):
        B.parse_args(["--device", "cpu", "--encoders", "resnet18,densenet"])
    with pytest.raises(SystemExit):
        B.parse_args(["--device", "cpu", "--steps", "0"])


def test_counted_rate_is_images_per_second_of_the_counted_steps() -> None:
    args = B.parse_args(["--device", "cpu", "--steps", "3", "--batch-size", "4"])
    assert B.counted_rate(2.0, args) == pytest.approx(3 * 4 / 2.0)
