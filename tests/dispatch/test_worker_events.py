"""`$SAASSY_EVENTS` lines are untrusted: parsed into typed events or refused, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saassy.dispatch.progress import progress_json
from saassy.dispatch.worker_output import (
    MAX_EVENT_LINE_BYTES,
    MAX_EVENTS_BYTES,
    MAX_MESSAGE_CHARS,
    ActionEvent,
    InvalidOutput,
    ProgressEvent,
    UnitsEvent,
    parse_event,
    read_events,
    read_result,
)
from saassy.kit.time import utcnow
from saassy.runtime.redaction import Redactor


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ('{"type": "progress", "percent": 40}', ProgressEvent(40.0, None)),
        ('{"type": "progress", "message": "half way"}', ProgressEvent(None, "half way")),
        ('{"type": "progress", "percent": 99.5, "message": "x"}', ProgressEvent(99.5, "x")),
        ('{"type": "action", "name": "publish", "count": 2}', ActionEvent("publish", 2)),
        ('{"type": "units", "name": "pages"}', UnitsEvent("pages", 1.0)),
        ('{"type": "units", "name": "gb_out", "quantity": 0.25}', UnitsEvent("gb_out", 0.25)),
        (
            '{"type": "units", "name": "pages", "quantity": 1, "page": "extra"}',
            UnitsEvent("pages", 1),
        ),
        (b'{"type": "action", "name": "publish"}', ActionEvent("publish", 1)),
    ],
)
def test_well_formed_lines_become_typed_events(line: str | bytes, event: object) -> None:
    assert parse_event(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        b"\xff\xfe{}",
        '{"type": "progress"}',
        '{"type": "progress", "percent": 101}',
        '{"type": "progress", "percent": -1}',
        '{"type": "progress", "percent": true}',
        '{"type": "progress", "percent": "40"}',
        '{"type": "progress", "message": 7}',
        '{"type": "action"}',
        '{"type": "action", "name": "Publish"}',
        '{"type": "action", "name": "publish", "count": 0}',
        '{"type": "action", "name": "publish", "count": 1.5}',
        '{"type": "action", "name": "publish", "count": true}',
        '{"type": "action", "name": "publish", "count": 1000001}',
        '{"type": "units", "name": "pages", "quantity": -1}',
        '{"type": "units", "name": "pages", "quantity": 1e13}',
        '{"type": "units", "name": "pages", "quantity": NaN}',
        '{"type": "units", "name": "pages", "quantity": Infinity}',
        '{"type": "units", "name": "x" }'.replace('"x"', '"' + "a" * 41 + '"'),
        '{"type": "units", "name": "pages", "quantity": ' + "9" * 5000 + "}",
        '{"type": "teleport", "name": "pages"}',
        '{"action": "publish", "count": 1}',  # the shape the docs never showed
        '{"units": "pages", "quantity": 3}',
        "[" * 5000,
        "[" * 100_000 + "]" * 100_000,  # past the line cap
        '{"type": "units", "name": "pages", "quantity": 1, "x": ' + "[" * 65 + "]" * 65 + "}",
        '{"type": "units", "name": "pages", "quantity": 1' + "0" * 40 + "}",
        '{"type": "progress", "message": "a\\ud800b"}',
        '{"type": "progress", "message": "a\\u0000b"}',
    ],
)
def test_malformed_or_unknown_lines_are_refused(line: str | bytes) -> None:
    assert parse_event(line) is None


def test_an_overlong_line_is_refused_and_a_message_is_capped() -> None:
    padded = json.dumps({"type": "progress", "percent": 1, "pad": "x" * MAX_EVENT_LINE_BYTES})
    assert parse_event(padded) is None
    # Two bytes a character: short enough in characters, too long in bytes.
    wide = json.dumps(
        {"type": "progress", "pad": "é" * (MAX_EVENT_LINE_BYTES // 2)}, ensure_ascii=False
    )
    assert parse_event(wide) is None


def test_a_progress_message_is_redacted_then_cut_and_always_valid_unicode() -> None:
    secret = "tok-0123456789"
    text = "m" * (MAX_MESSAGE_CHARS - 10) + secret + "tail"
    event = parse_event(json.dumps({"type": "progress", "message": text}))
    assert isinstance(event, ProgressEvent)
    shown = progress_json(event, 1, utcnow(), Redactor({"TOKEN": secret}))["message"]
    assert shown == "m" * (MAX_MESSAGE_CHARS - 10) + "[redacted:"  # never a piece of the value
    assert len(shown) == MAX_MESSAGE_CHARS


def test_read_events_sums_declared_actions_and_units_and_counts_the_rest(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            [
                '{"type": "progress", "percent": 10}',
                '{"type": "action", "name": "publish"}',
                '{"type": "action", "name": "publish", "count": 2}',
                '{"type": "action", "name": "delete"}',  # not declared: never reserved
                '{"type": "units", "name": "pages", "quantity": 12}',
                '{"type": "units", "name": "pages", "quantity": 0.5}',
                "",
                "garbage",
                '{"type": "progress", "percent": 90, "message": "almost"}',
            ]
        )
    )
    reported = read_events(events, ("publish",))
    assert reported.actions == {"publish": 3}
    assert reported.units == {"pages": 12.5}
    assert reported.progress == ProgressEvent(90.0, "almost")
    assert reported.ignored == 2


def test_read_events_reads_only_the_first_mebibyte_of_a_regular_file(tmp_path: Path) -> None:
    line = b'{"type": "units", "name": "pages", "quantity": 1}\n'
    events = tmp_path / "events.jsonl"
    events.write_bytes(line * (MAX_EVENTS_BYTES // len(line) + 100))
    reported = read_events(events, ())
    assert reported.units["pages"] == MAX_EVENTS_BYTES // len(line)
    assert reported.ignored == 1  # the line cut at the limit

    link = tmp_path / "link.jsonl"
    link.symlink_to(events)
    assert read_events(link, ()).units == {}
    assert read_events(tmp_path / "missing.jsonl", ()).units == {}


def test_a_units_name_past_the_types_cap_fails_the_output(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [json.dumps({"type": "units", "name": f"u{n}"}) for n in range(20_000)]
    events.write_text("\n".join(lines))
    with pytest.raises(InvalidOutput, match="reported more than 50 distinct unit names"):
        read_events(events, (), max_unit_names=50)
    events.write_text("\n".join(lines[:50] + lines[:50]))  # the same 50 names again
    assert read_events(events, (), max_unit_names=50).units == {f"u{n}": 2.0 for n in range(50)}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"x": "\\ud800"}', "lone surrogate"),
        (b'{"x": "\\u0000"}', "NUL character"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 64 levels"),
        (b'{"x": "' + b"[" * 100 + b'"}', None),  # brackets in a string are text
        (b"1" * 5000, "integer longer than 40 digits"),
        (b'{"x": ' + b"9" * 5000 + b"}", "integer longer than 40 digits"),
        (b"[1e999]", "number too large"),
        (b"[NaN]", "NaN"),
        (b"\xff", "not UTF-8"),
        (b'{"x": 1', "not valid JSON"),
    ],
)
def test_a_result_that_is_not_storable_json_is_refused(
    tmp_path: Path, content: bytes, reason: str | None
) -> None:
    (tmp_path / "result.json").write_bytes(content)
    if reason is None:
        assert read_result(tmp_path) == {"x": "[" * 100}
        return
    with pytest.raises(InvalidOutput, match=reason):
        read_result(tmp_path)
