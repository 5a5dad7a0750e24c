"""The flat depth scan that runs before `json.loads` on what a program wrote."""

from __future__ import annotations

import pytest

from saassy.dispatch.untrusted_json import MAX_DEPTH, UnsafeJson, depth_of_text, load_untrusted_json


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[[1], {}]", 2),
        ('{"a": "[[[", "b": [[1]]}', 3),  # brackets inside a string do not count
        (r'["\\", [[]]]', 3),  # an escaped backslash ends before the closing quote
        (r'["\"]]]", [1]]', 2),  # an escaped quote does not close the string
        ('["open', 1),  # an unterminated string runs to the end
        ('"ends in a backslash\\', 0),
        ("[" * 100_000 + "]" * 100_000, 100_000),
    ],
)
def test_the_depth_scan_skips_strings(text: str, depth: int) -> None:
    assert depth_of_text(text) == depth


def test_a_mebibyte_of_escaped_quotes_is_scanned_once() -> None:
    # Each quote of an unterminated string used to start a scan to the end: hours for this text
    # (the suite's timeout fails it); one pass now.
    text = '"' + '\\"' * 2**19
    assert depth_of_text(text) == 0
    with pytest.raises(UnsafeJson, match="not valid JSON"):
        load_untrusted_json(text)


def test_one_level_past_the_cap_is_refused_before_parsing() -> None:
    assert load_untrusted_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(UnsafeJson, match=f"deeper than {MAX_DEPTH}"):
        load_untrusted_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
