"""Redaction of received secrets from what a task leaves behind (unit)."""

from __future__ import annotations

from saassy.dispatch.redaction import Redactor


def test_every_occurrence_is_replaced_longest_first() -> None:
    redactor = Redactor({"SHORT": "abc", "LONG": "abcdef", "EMPTY": ""})
    assert redactor.text("x abcdef y abc z") == "x [redacted:LONG] y [redacted:SHORT] z"
    assert redactor.data(b"abcabc") == b"[redacted:SHORT][redacted:SHORT]"


def test_json_values_and_keys_are_redacted_without_recursion() -> None:
    redactor = Redactor({"TOKEN": "tok-1"})
    deep: list[object] = ["tok-1"]
    for _ in range(100_000):
        deep = [deep]
    value = {"tok-1": ["a tok-1 b", 3, {"k": "tok-1"}], "deep": deep}
    redacted = redactor.json(value)
    assert redacted["[redacted:TOKEN]"] == ["a [redacted:TOKEN] b", 3, {"k": "[redacted:TOKEN]"}]
    innermost = redacted["deep"]
    while isinstance(innermost[0], list):
        innermost = innermost[0]
    assert innermost == ["[redacted:TOKEN]"]
    assert value["tok-1"][0] == "a tok-1 b"  # the original is left as it was


def test_without_secrets_nothing_changes() -> None:
    redactor = Redactor({})
    assert not redactor
    value = {"a": "b"}
    assert redactor.json(value) is value
