"""Study cells: parsing the settings, the grid order, cell folders and finished results."""

from __future__ import annotations

import pytest

from monai_ssl.study import Budget, Cell, build_grid, parse_fractions, parse_seeds, parse_shots
from monai_ssl.study.grid import check_protocols, is_finished, read_result, reset_dir, runs_at, write_result


def test_parse_fractions_from_text_and_numbers():
    assert [b.value for b in parse_fractions("0.01, 0.1,1.0")] == [0.01, 0.1, 1.0]
    assert parse_fractions([0.5]) == [Budget("fraction", 0.5)]


@pytest.mark.parametrize("value, message", [
    ("0", r"fractions: label fraction '0' is outside \(0, 1\]"),
    ("0.1,1.5", r"fractions: label fraction '1.5' is outside \(0, 1\]"),
    ("-0.2", "outside"),
    ("nan", "outside"),
    ("abc", "fractions: 'abc' is not a number"),
    ("", "fractions: the list is empty"),
    ("0.1,0.1", "listed twice"),
    ("0.1,0.10", "listed twice"),
])
def test_parse_fractions_errors_name_the_setting(value, message):
    with pytest.raises(ValueError, match=message):
        parse_fractions(value)


def test_fraction_zero_is_the_no_label_column_when_allowed():
    zero, tenth = parse_fractions("0, 0.1", allow_zero=True)
    assert zero == Budget("fraction", 0.0) and tenth.value == 0.1
    assert (zero.name, zero.label, str(zero)) == ("fraction_0", "0%", "fraction=0")
    assert Cell("picie", zero, 2).relative_dir.as_posix() == "cells/picie/fraction_0/seed_2"
    assert parse_fractions([-0.0], allow_zero=True)[0].name == "fraction_0"  # not fraction_-0
    for bad, message in [("-0.1", r"x: label fraction '-0.1' is outside \[0, 1\] \(0: no labels"),
                         ("0,0.0", "x: a fraction is listed twice"), ("1.01", "outside")]:
        with pytest.raises(ValueError, match=message):
            parse_fractions(bad, "x", allow_zero=True)


def test_label_free_protocols_get_only_the_zero_column_and_the_others_none_of_it():
    budgets = parse_fractions("0,0.1,1.0", allow_zero=True)
    cells = build_grid(["picie", "supervised", "cross"], budgets, [0, 1], label_free=["picie"])
    assert [(c.seed, c.budget.value, c.protocol) for c in cells[:5]] == [
        (0, 0.0, "picie"), (0, 0.1, "supervised"), (0, 0.1, "cross"), (0, 1.0, "supervised"), (0, 1.0, "cross")]
    assert len(cells) == 10 and cells[5:] == [Cell(c.protocol, c.budget, 1) for c in cells[:5]]
    assert build_grid(["a"], budgets, [0]) == [Cell("a", budgets[1], 0), Cell("a", budgets[2], 0)]
    assert build_grid(["picie"], parse_shots("5"), [0], label_free=["picie"]) == []
    assert runs_at(budgets[0], True) and not runs_at(budgets[0], False)
    assert runs_at(parse_shots("1")[0], False) and not runs_at(parse_shots("1")[0], True)


def test_parse_seeds_and_shots():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds([3]) == [3]
    assert [b.value for b in parse_shots("5,10")] == [5, 10]
    for bad, message in [("", "seeds: the list is empty"), ([], "seeds: the list is empty"),
                         ("-1", "seeds: a seed must be >= 0"), ("1.5", "seeds: '1.5' is not an integer"),
                         ("1,1", "seeds: '1' is listed twice")]:
        with pytest.raises(ValueError, match=message):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="shots: labeled images per class must be >= 1"):
        parse_shots("0")


def test_check_protocols_names_the_unknown_and_the_known():
    known = ["supervised", "byol_finetune"]
    assert check_protocols("byol_finetune", known) == ["byol_finetune"]
    with pytest.raises(ValueError, match=r"protocols: unknown protocol\(s\) \['byol'\]; .*\['supervised', "
                                         r"'byol_finetune'\]"):
        check_protocols("supervised,byol", known)


def test_grid_runs_seed_by_seed_then_budget_then_protocol():
    budgets = parse_fractions("0.1,1.0")
    cells = build_grid(["a", "b"], budgets, [0, 1])
    assert len(cells) == 8
    assert [(c.seed, c.budget.value, c.protocol) for c in cells[:4]] == [
        (0, 0.1, "a"), (0, 0.1, "b"), (0, 1.0, "a"), (0, 1.0, "b")]
    assert cells[4].seed == 1


def test_budget_and_cell_names():
    fraction, shots = Budget("fraction", 0.01), Budget("shots", 5)
    assert (fraction.name, fraction.label, fraction.column, str(fraction)) == (
        "fraction_0.01", "1%", "fraction", "fraction=0.01")
    assert (shots.name, shots.label, shots.column) == ("shots_5", "5/class", "shots_per_class")
    cell = Cell("byol_finetune", fraction, 3)
    assert cell.relative_dir.as_posix() == "cells/byol_finetune/fraction_0.01/seed_3"
    assert str(cell) == "byol_finetune fraction=0.01 seed=3"


def test_results_finish_a_cell_only_when_ok_or_skipped(tmp_path):
    assert read_result(tmp_path) is None and not is_finished(None)
    write_result(tmp_path, {"status": "ok", "metrics": {"accuracy": 0.5}})
    assert read_result(tmp_path)["metrics"] == {"accuracy": 0.5}
    assert is_finished(read_result(tmp_path))
    assert is_finished({"status": "skipped: split_labeled: too few"})
    assert not is_finished({"status": "failed: RuntimeError: boom"})
    (tmp_path / "cell.json").write_text("{half a file")
    assert read_result(tmp_path) is None
    assert not list(tmp_path.glob(".cell.json.*"))  # no temporary files left by the atomic write


def test_reset_dir_clears_leftovers_only_inside_the_study(tmp_path):
    cell = tmp_path / "cells" / "a" / "seed_0"
    (cell / "models").mkdir(parents=True)
    (cell / "models" / "partial.pt").write_bytes(b"x")
    reset_dir(cell, tmp_path)
    assert cell.is_dir() and not any(cell.iterdir())
    for outside in (tmp_path, tmp_path.parent / "elsewhere"):
        with pytest.raises(ValueError, match="is not inside the study folder"):
            reset_dir(outside, tmp_path)
