"""The safe image ids and label tags of the MONAI Label server (:mod:`monai_ssl.label.names`).

Real datastore ids are accepted; ids that leave their folder or read as MONAI's config syntax are
refused with a reason that names the broken rule and never echoes the refused value.
"""

from __future__ import annotations

import pytest

from monai_ssl.label.names import FIXED_TAGS, MAX_NAME_LENGTH, UnsafeName, check_image_id, check_label_tag, name_problem

SAFE_IDS = ["ISIC_0000000", "1130", "spleen_10", "1.2.840.113619.2.55.3.604688119", "case-1.b", "a", "Z" * MAX_NAME_LENGTH]


@pytest.mark.parametrize("name", SAFE_IDS)
def test_real_datastore_ids_are_accepted(name):
    assert name_problem(name) is None
    assert check_image_id(name) == name
    assert check_label_tag(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("$open('/etc/passwd').read()", "config syntax"),
        ("@network_def", "config syntax"),
        ("%configs/train.json#net", "config syntax"),
        ("$x", "starts with '$'"),
        ("@x", "starts with '@'"),
        ("%x", "starts with '%'"),
        ("images/evil", "path separator"),
        ("/etc/passwd", "path separator"),
        ("images\\evil", "path separator"),
        ("..", "'..'"),
        ("..evil", "'..'"),
        ("a..b", "'..'"),
        (".hidden", "outside the allowed set"),
        ("-rf", "outside the allowed set"),
        ("_x", "outside the allowed set"),
        ("", "is empty"),
        ("x" * (MAX_NAME_LENGTH + 1), f"longer than {MAX_NAME_LENGTH} characters"),
        ("two words", "outside the allowed set"),
        ("quote'd", "outside the allowed set"),
        ('double"quote', "outside the allowed set"),
        ("caf\u00e9", "outside the allowed set"),
        ("\u0661\u0662", "outside the allowed set"),  # Arabic-Indic digits are not ASCII digits
        ("line\nbreak", "outside the allowed set"),
        ("trailing\n", "outside the allowed set"),
        ("semi;colon", "outside the allowed set"),
    ],
)
def test_unsafe_ids_are_refused_with_the_rule_they_break(name, reason):
    problem = name_problem(name)
    assert problem is not None
    assert reason in problem
    with pytest.raises(UnsafeName) as caught:
        check_image_id(name)
    message = str(caught.value)
    assert message.startswith("image id ")
    assert reason in message


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (5, "int"), (b"spleen_10", "bytes"), (["a"], "list")])
def test_non_strings_are_refused(value, type_name):
    assert name_problem(value) == f"must be a string, got {type_name}"
    with pytest.raises(UnsafeName, match="must be a string"):
        check_image_id(value)
    with pytest.raises(UnsafeName, match="must be a string"):
        check_label_tag(value)


def test_unsafe_name_is_a_value_error():
    assert issubclass(UnsafeName, ValueError)


@pytest.mark.parametrize(
    "name",
    [
        "$open('/etc/passwd').read()",
        "@train#network_def",
        "%configs/train.json#net",
        "../../etc/cron.d/evil",
        "images\\..\\secret",
        "<script>alert(1)</script>",
        "x" * 500,
        "spaces are refused",
    ],
)
def test_messages_never_echo_the_refused_value(name):
    problem = name_problem(name)
    assert problem is not None
    assert name not in problem
    for check in (check_image_id, check_label_tag):
        with pytest.raises(UnsafeName) as caught:
            check(name)
        assert name not in str(caught.value)
    # the long value is not echoed even in part
    assert "x" * 20 not in name_problem("x" * 500)


@pytest.mark.parametrize("tag", ["final", "original", "my_tag", "reviewer-2", "v1.0"])
def test_label_tags_accepted(tag):
    assert check_label_tag(tag) == tag


def test_fixed_tags_are_final_and_original():
    assert FIXED_TAGS == ("final", "original")
    for tag in FIXED_TAGS:
        assert check_label_tag(tag) == tag


@pytest.mark.parametrize("tag", ["../x", "$x", "@x", "a/b", "..", "", ".x", None, 3])
def test_unsafe_label_tags_are_refused(tag):
    with pytest.raises(UnsafeName) as caught:
        check_label_tag(tag)
    assert str(caught.value).startswith("label tag ")
