"""Bundles only wire parts: no ``$`` expression of any config holds a conditional, a loop, a comprehension or a
boolean operator. Logic is a tested Python part (``monai_ssl.recipes``, ``monai_ssl.utils``, ...) that the config names;
simple references, calls and arithmetic (``$@a + 1``, ``$@net.parameters()``, ``$dist.get_rank() > 0``) are fine."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundle_helpers import REPO

CONFIGS = sorted((REPO / "bundles").glob("*/configs/*.json"))
LOGIC = {
    ast.IfExp: "a conditional (x if c else y)",
    ast.BoolOp: "a boolean operator (and/or)",
    ast.ListComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.Lambda: "a lambda",
}


def expressions(config: object, key: str = "") -> Iterator[tuple[str, str]]:
    """``(config id, expression without the $)`` of every ``$`` string of a config."""
    if isinstance(config, dict):
        for k, v in config.items():
            yield from expressions(v, f"{key}#{k}" if key else str(k))
    elif isinstance(config, list):
        for i, v in enumerate(config):
            yield from expressions(v, f"{key}#{i}")
    elif isinstance(config, str) and config.startswith("$"):
        yield key, config[1:]


def logic_in(expression: str) -> list[str]:
    """What makes ``expression`` logic rather than wiring (empty when it is wiring)."""
    code = re.sub(r"@([\w#]+)", lambda m: "REF_" + m.group(1).replace("#", "__"), expression).strip()
    tree = ast.parse(code)
    found = [LOGIC[type(node)] for node in ast.walk(tree) if type(node) in LOGIC]
    found += ["a boolean operator (not)" for node in ast.walk(tree)
              if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)]
    found += ["a loop" for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While))]
    return sorted(set(found))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_expression_holds_logic(path: Path):
    offenders = [f"{path.relative_to(REPO)} key {key!r}: {', '.join(found)}: {expr[:100]}"
                 for key, expr in expressions(json.loads(path.read_text())) if (found := logic_in(expr))]
    assert not offenders, "move the logic into a tested Python part:\n" + "\n".join(offenders)


def test_the_check_finds_each_kind_of_logic():
    assert logic_in("@a if @b else @c") == ["a conditional (x if c else y)"]
    assert logic_in("@a or @b") == ["a boolean operator (and/or)"]
    assert logic_in("not @a") == ["a boolean operator (not)"]
    assert logic_in("[p for p in @net.parameters() if p.requires_grad]") == ["a comprehension"]
    assert logic_in("{k: v for k, v in @m.items()}") == ["a comprehension"]
    assert logic_in("@a + 1") == [] and logic_in("@net.parameters()") == [] and logic_in("dist.get_rank() > 0") == []
    assert logic_in("monai_ssl.utils.choose('architecture', @architecture, @network_defs)") == []
