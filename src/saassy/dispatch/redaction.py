"""A task's secrets never come back out in what it leaves: logs, result, error, progress.

Every received value is replaced with `[redacted:<NAME>]`, longest first (so a value holding
another keeps no part of it). Only the literal values are caught: a program that encodes a
secret (base64, hex, split across lines) before printing it is not — as in every CI system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Redactor:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        pairs = sorted(
            ((value, f"[redacted:{name}]") for name, value in secrets.items() if value),
            key=lambda pair: -len(pair[0]),
        )
        self._text = pairs
        self._bytes = [(value.encode(), mark.encode()) for value, mark in pairs]

    def __bool__(self) -> bool:
        return bool(self._text)

    def text(self, value: str) -> str:
        for secret, mark in self._text:
            value = value.replace(secret, mark)
        return value

    def data(self, value: bytes) -> bytes:
        for secret, mark in self._bytes:
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
