"""JSON written by untrusted programs, parsed under caps no input gets around.

`json.loads` recurses once per nesting level and converts integers of any length, so a line of
brackets or a long run of digits costs the host what it costs the program nothing. The depth is
measured first by a flat scan (no recursion, linear in the text); integers are bounded as they
are parsed; what parses must still be storable as JSON text: finite numbers, no lone surrogates
(`\\ud800` escapes decode to them, and no UTF-8 text holds one), no NUL (PostgreSQL refuses it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
MAX_INTEGER_DIGITS = 40  # 128-bit integers have 39

# A string runs to its closing quote or, unterminated, to the end of the text: either way it is
# consumed whole, so no quote starts a second scan (`"\"\"...` was quadratic when a string
# had to close).
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|[^"\[\]{}]++|[\[\]{}]', re.DOTALL)
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class UnsafeJson(ValueError):
    """Not JSON the platform takes from a program; the message says why, without the text."""


def depth_of_text(text: str) -> int:
    """How deeply the text's arrays and objects nest, brackets inside strings left out."""
    steps = (_DEPTH_STEP.get(token, 0) for token in _TOKEN.findall(text))
    return max(accumulate(steps), default=0)


def load_untrusted_json(raw: bytes | str) -> Any:
    """The parsed value, or UnsafeJson: too deep, too long a number, or not storable text."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UnsafeJson("is not UTF-8 text") from None
    if depth_of_text(text) > MAX_DEPTH:
        raise UnsafeJson(f"nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except UnsafeJson:
        raise
    except ValueError as exc:
        raise UnsafeJson(f"is not valid JSON: {exc}") from None
    for string in _strings(value):
        if "\x00" in string:
            raise UnsafeJson("holds a NUL character (\\u0000), which cannot be stored")
        try:
            string.encode()
        except UnicodeEncodeError:
            raise UnsafeJson(
                "holds a lone surrogate (e.g. \\ud800): it is not valid Unicode"
            ) from None
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UnsafeJson(f"holds an integer longer than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson("holds a number too large to store")
    return value


def _no_constant(text: str) -> float:
    raise UnsafeJson(f"holds {text}, which is not a JSON number")


def _strings(value: Any) -> Iterator[str]:
    """Every string in the value, keys included; iterative, so depth costs no recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
