"""The peak-memory benchmark: a case measured in its own process, failures reported, the page's section written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import bench_ssl_memory as M  # benchmarks/, on the path through setup.cfg's pytest `pythonpath`

TINY = ["--device", "cpu", "--threads", "1", "--global-size", "16", "--local-size", "8", "--dino-out", "64",
        "--vit-layers", "1"]


def test_reset_rss_peak_forgets_an_earlier_peak() -> None:
    big = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    peak_with = M.rss_peak_mib()
    del big
    assert M.reset_rss_peak()  # Linux
    assert M.rss_peak_mib() < peak_with - 32
    assert M.rss_peak_mib() == pytest.approx(M.proc_status_mib("VmRSS"), abs=8)


def test_measure_reports_the_growth_of_the_peak_rss() -> None:
    # in this test process, the fields only: pages freed by earlier tests may hold the step (hence the child processes)
    result = M.measure("cass", "bare", 2, M.parse_args(TINY))
    assert (result["case"], result["variant"], result["batch"]) == ("cass", "bare", 2)
    assert result["measure"] in ("VmHWM", "ru_maxrss")  # ru_maxrss where the kernel refuses to reset VmHWM
    assert result["before_mib"] > 0 and result["growth_mib"] >= 0
    assert result["peak_mib"] == pytest.approx(result["before_mib"] + result["growth_mib"])


def test_main_measures_each_case_in_a_child_and_writes_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    results = M.main([*TINY, "--methods", "cass", "--batches", "2", "--variants", "trainer", "--write",
                      "--out", str(page)])
    assert len(results) == 1 and "error" not in results[0]
    assert (results[0]["case"], results[0]["variant"], results[0]["batch"]) == ("cass", "trainer", 2)
    assert results[0]["growth_mib"] > 50  # in a fresh process: gradients and Adam moments of ResNet-18 (11 M) at least
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!-- bench:ssl_memory -->")
    assert "| case | batch | bare step: peak RSS growth (peak RSS) | trainer step: peak RSS growth (peak RSS) |" in text
    assert "| cass | 2 | - | " in text  # the bare step was not asked for


def test_a_failing_child_is_reported_with_its_error() -> None:
    result = M.run_child("no-such-case", "bare", 2, M.parse_args(TINY))
    assert result["peak_mib"] is None
    assert "unknown case 'no-such-case'" in result["error"]
