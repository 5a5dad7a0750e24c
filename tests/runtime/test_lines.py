"""LineCutter against the plain per-line rule it replaces, whatever the reads and line lengths."""

from __future__ import annotations

import random

import pytest

from saassy.runtime.lines import LineCutter, all_shorter
from saassy.runtime.redaction import Redactor

MAX_LINE = 64


def one_line_at_a_time(text: bytes, redactor: Redactor) -> list[bytes]:
    """The rule: each line redacted alone, then cut into pieces of at most MAX_LINE."""
    pieces = []
    for line in text.removesuffix(b"\n").split(b"\n"):
        line = redactor.data(line)
        pieces += [line[i : i + MAX_LINE] for i in range(0, max(len(line), 1), MAX_LINE)]
    return pieces


@pytest.mark.parametrize("seed", range(30))
def test_any_reads_give_the_lines_of_the_per_line_rule(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300]) for _ in range(200)]
    text = b"\n".join(bytes([97 + i % 25]) * n for i, n in enumerate(lengths)) + b"\n"
    redactor = Redactor({"SHORT": "zzzzzzzzz"})  # never printed (no z): it only holds lines back
    cutter = LineCutter(MAX_LINE, redactor)
    out, start = [], 0
    while start < len(text):
        size = rng.choice([1, 7, 100, 1000, 5000])
        out.append(cutter.feed(text[start : start + size]))
        start += size
    out.append(cutter.rest())
    got = b"".join(out)
    assert got.endswith(b"\n")
    assert got[:-1].split(b"\n") == one_line_at_a_time(text, redactor)


@pytest.mark.parametrize("length", [0, 31, 32, 63, 64, 65, 96, 128, 1000])
def test_the_length_check_never_misses_a_long_line(length: int) -> None:
    for before in range(0, 70, 3):  # wherever the line starts against the check's windows
        lines = b"x\n" * (before // 2) + b"a" * length + b"\n" + b"y\n" * 40
        if length > MAX_LINE:
            assert not all_shorter(lines, MAX_LINE)
