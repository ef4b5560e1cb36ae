"""Tests for bundle overlays that name their base config when run alone."""

from __future__ import annotations

import pytest

from monai_ssl.utils import declare_base, require_base, withdraw_base


def test_overlay_alone_names_its_base_and_the_command():
    with pytest.raises(RuntimeError, match=r"pseudolabel.json is an overlay of finetune.json.*'b/configs/finetune.json','b/configs/pseudolabel.json'"):
        require_base("pseudolabel.json", "finetune.json", "b")


def test_a_declaration_serves_one_run():
    declare_base("finetune.json")
    require_base("few_shot.json", "finetune.json")
    with pytest.raises(RuntimeError):
        require_base("few_shot.json", "finetune.json")


def test_a_base_run_alone_leaves_no_declaration_for_a_later_overlay():
    declare_base("finetune.json")  # the base's initialize
    withdraw_base("finetune.json")  # the base's own run
    with pytest.raises(RuntimeError, match="overlay of finetune.json"):
        require_base("pseudolabel.json", "finetune.json")
