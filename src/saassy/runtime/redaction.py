"""A task's secrets never come back out in what it leaves: logs, result, error, progress.

Every received value is replaced with `[redacted:<NAME>]`, longest first (so a value holding
another keeps no part of it), and so is each line of a multi-line value (a PEM key printed line
by line). Only the literal values are caught: a program that encodes a secret (base64, hex,
reversed) before printing it is not — as in every CI system. Redaction guards against leaks by
accident, not against code that means to reveal what it was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MIN_LINE_CHARS = 8  # a multi-line value's lines shorter than this are not worth hiding alone


class Redactor:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        found: dict[str, str] = {}
        for name, value in secrets.items():
            mark = f"[redacted:{name}]"
            for line in value.splitlines() if "\n" in value or "\r" in value else ():
                if len(line.strip()) >= MIN_LINE_CHARS:
                    found.setdefault(line.strip(), mark)
            if value:
                found[value] = mark
        pairs = sorted(found.items(), key=lambda pair: -len(pair[0]))
        self._text = pairs
        self._bytes = [(value.encode(), mark.encode()) for value, mark in pairs]
        # A multi-line value is caught line by line in output, as if each line were redacted alone.
        self._line_bytes = [(value, mark) for value, mark in self._bytes if b"\n" not in value]
        self._marks = dict(pairs)
        # The most bytes a value can span: how much output to hold back before cutting a line.
        self.longest = max((len(value) for value, _ in self._bytes), default=0)

    def __bool__(self) -> bool:
        return bool(self._text)

    def safe_cut(self, data: bytes, at: int) -> int:
        """Where to cut `data` near `at` without splitting a value in two (before it)."""
        for value, _ in self._bytes:
            start = data.find(value, max(0, at - len(value) + 1))
            if start != -1 and start < at < start + len(value):
                return start if start > 0 else start + len(value)
        return at

    def text(self, value: str) -> str:
        for secret, mark in self._text:
            value = value.replace(secret, mark)
        return value

    def data(self, value: bytes) -> bytes:
        for secret, mark in self._bytes:
            value = value.replace(secret, mark)
        return value

    def lines(self, value: bytes) -> bytes:
        """Whole lines redacted at once, each exactly as `data()` would redact it alone."""
        for secret, mark in self._line_bytes:
            value = value.replace(secret, mark)
        return value

    def json(self, value: Any) -> Any:
        """A copy of a parsed JSON value with every string (keys too) redacted; iterative, as
        the value came from customer code and may nest deeply."""
        if not self:
            return value
        root: list[Any] = [value]
        stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
        while stack:
            parent, key, item = stack.pop()
            if isinstance(item, str):
                parent[key] = self.text(item)
            elif isinstance(item, int | float) and not isinstance(item, bool):
                parent[key] = self._marks.get(json.dumps(item), item)  # a numeric secret
            elif isinstance(item, list):
                copy: list[Any] = list(item)
                parent[key] = copy
                stack.extend((copy, index, child) for index, child in enumerate(copy))
            elif isinstance(item, dict):
                mapped = {self.text(k): v for k, v in item.items()}
                parent[key] = mapped
                stack.extend((mapped, k, v) for k, v in mapped.items())
        return root[0]


NO_SECRETS = Redactor({})
