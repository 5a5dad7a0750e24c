"""Redaction of received secrets from what a task leaves behind (unit)."""

from __future__ import annotations

import asyncio

import pytest

from saassy.runtime.output import OutputPump
from saassy.runtime.redaction import Redactor


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


async def pumped(redactor: Redactor, *chunks: bytes, max_line: int = 64) -> list[bytes]:
    pump = OutputPump(max_line=max_line, redactor=redactor)
    reader = asyncio.StreamReader()
    pump.attach("stdout", reader)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return [line.data async for line in pump.lines()]


@pytest.mark.parametrize("offset", range(40, 70))
async def test_a_long_line_is_never_cut_inside_a_secret(offset: int) -> None:
    secret = "S3CRET-" + "v" * 13  # 20 characters, lands across the 64-byte cut
    redactor = Redactor({"TOKEN": secret})
    line = b"x" * offset + secret.encode() + b"y" * 100
    pieces = await pumped(redactor, line[:50], line[50:], b"\n")
    joined = b"".join(pieces)
    assert secret.encode() not in joined
    assert b"[redacted:TOKEN]" in joined
    for piece in pieces:  # not even a part of it, on either side of a cut
        assert b"S3CRET" not in piece
        assert b"vvvvvvvvvvvvv" not in piece


async def test_each_line_of_a_multi_line_secret_is_redacted() -> None:
    key = "\n".join(
        ["-----BEGIN KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwg7", "-----END KEY-----"]
    )
    pieces = await pumped(Redactor({"KEY": key}), key.encode() + b"\n", max_line=1024)
    # Every line of 8 characters or more is hidden; a short one alone reveals next to nothing.
    assert pieces == [b"[redacted:KEY]", b"[redacted:KEY]", b"BKcwg7", b"[redacted:KEY]"]


def test_a_numeric_secret_in_a_result_is_redacted() -> None:
    redactor = Redactor({"CARD": "4111111111111111"})
    assert redactor.json({"n": 4111111111111111, "m": 7, "ok": True}) == {
        "n": "[redacted:CARD]",
        "m": 7,
        "ok": True,
    }
