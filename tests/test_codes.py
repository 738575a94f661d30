"""smtplab.codes still offers every name it always did; they now live in smtplab.replycodes and smtplab.annotate."""

from __future__ import annotations

import pytest

from smtplab import annotate, codes, replycodes

#: The public names of smtplab.codes before the catalogue and the annotator were split apart.
OLD_NAMES = [
    "CAPABILITIES", "COMMANDS", "ENHANCED_CLASSES", "ENHANCED_DETAILS", "ENHANCED_SUBJECTS", "REPLY_CODES",
    "Annotator", "CodeInfo", "Reply", "describe_capability", "describe_digits", "explain", "explain_enhanced",
    "explain_reply_code", "parse_reply",
]


def test_all_names_exported():
    for name in codes.__all__:
        assert hasattr(codes, name), name


@pytest.mark.parametrize("name", OLD_NAMES)
def test_each_old_name_is_the_object_from_its_new_home(name):
    home = annotate if name == "Annotator" else replycodes
    assert name in codes.__all__
    assert getattr(codes, name) is getattr(home, name)
