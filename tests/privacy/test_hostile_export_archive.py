"""Hostile probes of export archive member names: a task's artifact may be named with
backslashes (a valid file name on Linux), which Windows unzip tools read as separators."""

from __future__ import annotations

import pytest

from saassy.privacy.export_archive import safe_member


@pytest.mark.parametrize(
    "name",
    [
        "..\\..\\..\\..\\..\\..\\Users\\Public\\evil.bat",
        "out\\..\\..\\..\\..\\..\\..\\evil.bat",
    ],
)
def test_no_member_name_climbs_out_on_windows_either(name: str) -> None:
    member = safe_member(name)
    parts = member.replace("\\", "/").split("/")
    assert ".." not in parts, member
