"""What a program left is read and removed on the loop only when it is a few small plain files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saassy.dispatch.worker_output import LITTLE_BYTES, MAX_LITTLE_ENTRIES, left_little


@pytest.fixture
def left(tmp_path: Path) -> tuple[Path, Path]:
    output, events = tmp_path / "output", tmp_path / "events.jsonl"
    output.mkdir()
    (output / "result.json").write_text('{"ok": true}')
    events.write_text('{"type": "progress", "percent": 50}\n')
    return output, events


def test_a_few_small_files_are_little(left: tuple[Path, Path]) -> None:
    assert left_little(*left)


def test_more_bytes_than_little_with_the_events_are_not(left: tuple[Path, Path]) -> None:
    output, events = left
    (output / "result.json").write_bytes(b"x" * (LITTLE_BYTES // 2))
    assert left_little(output, events)
    events.write_bytes(b"x" * (LITTLE_BYTES // 2 + 1))
    assert not left_little(output, events)


@pytest.mark.parametrize("shape", ["subdir", "link", "fifo", "many files"])
def test_anything_but_a_few_plain_files_is_not(left: tuple[Path, Path], shape: str) -> None:
    output, events = left
    if shape == "subdir":
        (output / "more").mkdir()
    elif shape == "link":
        (output / "elsewhere").symlink_to("/etc/passwd")
    elif shape == "fifo":
        os.mkfifo(output / "pipe")
    else:
        for n in range(MAX_LITTLE_ENTRIES):
            (output / f"{n}.txt").write_text("x")
    assert not left_little(output, events)


def test_nothing_there_is_not(tmp_path: Path) -> None:
    assert not left_little(tmp_path / "output", tmp_path / "events.jsonl")
