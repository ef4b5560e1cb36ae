from __future__ import annotations

import re

import numpy as np
import pytest

from monai_ssl.utils import require_flags
from monai_ssl.utils import disabled_unless


def test_accepts_booleans_and_the_integers_0_and_1():
    require_flags(resume=True, amp=False, a=0, b=1, c=np.bool_(True), d=np.int64(0))


@pytest.mark.parametrize("text", ["true", "false", "True", "yes", ""])
def test_rejects_text_naming_the_key_the_value_and_the_fix(text):
    with pytest.raises(ValueError) as caught:
        require_flags(amp=True, resume=text)
    message = str(caught.value)
    assert f"setting 'resume' must be True or False, got the text {text!r}" in message
    assert "--resume True or --resume False" in message
    assert "Fire reads lowercase true/false as text" in message


@pytest.mark.parametrize(("value", "shown"), [(2, "2 (int)"), (None, "None (NoneType)"), (0.0, "0.0 (float)")])
def test_rejects_other_values(value, shown):
    with pytest.raises(ValueError, match=re.escape(f"setting 'skip_unreadable' must be True or False, got {shown}:")):
        require_flags(skip_unreadable=value)


def test_disabled_unless():
    assert disabled_unless(True) is False and disabled_unless(False) is True
    with pytest.raises(ValueError, match="true or false"):
        disabled_unless("false")
