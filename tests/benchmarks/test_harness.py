"""The benchmarks' harness: a script replaces only its own section of the page; variants alternate by round."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness  # benchmarks/harness.py, on the path through setup.cfg's pytest `pythonpath`

PAGE = """# Intro

<!-- bench:a -->
# A
old a
<!-- /bench:a -->

# Hand-written
kept

<!-- bench:b -->
# B
old b
<!-- /bench:b -->
"""


def test_replace_section_changes_only_its_markers() -> None:
    text = harness.replace_section(PAGE, "a", "# A\nnew a\n")
    assert text == PAGE.replace("old a", "new a")
    assert harness.replace_section(text, "a", "# A\nnew a") == text  # idempotent


def test_replace_section_appends_a_missing_section_and_refuses_broken_markers() -> None:
    text = harness.replace_section(PAGE, "c", "# C")
    assert text.startswith(PAGE.rstrip("\n")) and text.endswith("<!-- bench:c -->\n# C\n<!-- /bench:c -->\n")
    with pytest.raises(ValueError, match="broken"):
        harness.replace_section(PAGE.replace("<!-- /bench:b -->", ""), "b", "# B")


def test_write_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE, encoding="utf-8")
    harness.write_section("b", ["# B", "new b"], page)
    assert page.read_text(encoding="utf-8") == PAGE.replace("old b", "new b")


def test_interleave_alternates_the_order_round_by_round() -> None:
    calls: list[str] = []
    variants = {name: (lambda name=name: calls.append(name) or len(calls)) for name in ("x", "y", "z")}
    results = harness.interleave(variants, rounds=3)
    assert calls == ["x", "y", "z", "z", "y", "x", "x", "y", "z"]
    assert results == {"x": [1, 6, 7], "y": [2, 5, 8], "z": [3, 4, 9]}


def test_stats() -> None:
    s = harness.Stats.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.min, s.max, s.n) == (2.5, 1.0, 10.0, 4)
    assert s.spread == pytest.approx(9.0 / 2.5)
