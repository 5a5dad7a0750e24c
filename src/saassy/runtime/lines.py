"""A pipe's bytes as whole, redacted lines, many at a time: the work is per read, not per line.

A line is held back until its newline has come, so a secret written across two reads is whole
when it is redacted. A line longer than `max_line` is split; while its newline has not come yet,
its head is cut off only once enough follows to see that no secret straddles the cut.
"""

from __future__ import annotations

from saassy.runtime.redaction import Redactor


class LineCutter:
    """Turns one stream's reads into blocks of whole lines, each ending in a newline."""

    def __init__(self, max_line: int, redactor: Redactor) -> None:
        self._max_line = max_line
        self._redactor = redactor
        self._hold = max_line + redactor.longest
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        """The lines `data` completes, redacted and split (empty when none did)."""
        if self._partial:
            data = self._partial + data
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        whole = self._finish(data[:end]) if end else b""
        if len(self._partial) < self._hold:
            return whole
        heads = [whole]
        while len(self._partial) >= self._hold:
            cut = self._redactor.safe_cut(self._partial, self._max_line)
            heads.append(self._finish(self._partial[:cut] + b"\n"))
            self._partial = self._partial[cut:]
        return b"".join(heads)

    @property
    def held(self) -> int:
        """Bytes of a line whose newline has not come yet."""
        return len(self._partial)

    def rest(self) -> bytes:
        """At the end of the stream: the last line, which had no newline."""
        rest, self._partial = self._partial, b""
        return self._finish(rest + b"\n") if rest else b""

    def _finish(self, lines: bytes) -> bytes:
        if self._redactor:
            lines = self._redactor.lines(lines)
        if all_shorter(lines, self._max_line):
            return lines
        return split_long_lines(lines, self._max_line)


def all_shorter(lines: bytes, max_line: int) -> bool:
    """Whether no line exceeds `max_line`, in len/(max_line/2) searches, not one per line.

    A line of `max_line` bytes or more holds an aligned window of half that length with no
    newline in it; finding one means only that a long line may be there.
    """
    half = max(1, max_line // 2)
    find = lines.find
    return all(
        find(b"\n", start, start + half) != -1 for start in range(0, len(lines) - half, half)
    )


def split_long_lines(lines: bytes, max_line: int) -> bytes:
    pieces: list[bytes] = []
    for line in lines[:-1].split(b"\n"):
        if len(line) <= max_line:
            pieces.append(line)
            continue
        pieces.extend(line[start : start + max_line] for start in range(0, len(line), max_line))
    pieces.append(b"")
    return b"\n".join(pieces)
