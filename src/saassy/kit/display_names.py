"""Names people give things (organizations, API keys): trimmed first, then measured and checked.

Surrounding whitespace and invisible format characters (a zero-width space, a byte-order mark)
are dropped before the length limit applies, so a name pasted with spaces around it is judged by
what is kept; a name with nothing visible left is refused as blank, and control characters
inside are refused (names end up in e-mail subjects and dashboards), and so are lone surrogates
and the bidirectional embedding, override and isolate controls, which can make a name display
in another order than it is stored (a "Trojan Source" spoof); the plain marks (U+200E, U+200F)
that right-to-left text may need stay.
"""

from __future__ import annotations

import unicodedata

from pydantic_core import PydanticCustomError

# U+202A-U+202E (embeddings, overrides, their pop) and U+2066-U+2069 (isolates).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Whitespace, and what renders as nothing: control and format characters.
_INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf"}


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _INVISIBLE


def trimmed(value: object) -> object:
    """The name without invisible characters at either end; blank is an error."""
    if not isinstance(value, str):
        return value  # the type check that follows says what is wrong
    start, end = 0, len(value)
    while start < end and _invisible(value[start]):
        start += 1
    while end > start and _invisible(value[end - 1]):
        end -= 1
    if start == end:
        raise PydanticCustomError("blank", "must not be blank (it holds no visible character)")
    return value[start:end]


def no_control_characters(value: str) -> str:
    """Refuse control characters (line breaks included) and lone surrogates inside a name."""
    categories = {unicodedata.category(char) for char in value}
    if categories & {"Cc", "Zl", "Zp"}:
        raise PydanticCustomError("control_characters", "must not contain control characters")
    if not BIDI_CONTROLS.isdisjoint(value):
        raise PydanticCustomError(
            "bidi_controls",
            "must not contain bidirectional override characters (they can make it display in "
            "another order than it is written)",
        )
    if "Cs" in categories:  # JSON's "\ud800" escape: valid JSON, but no text can hold it
        raise PydanticCustomError(
            "lone_surrogate", "holds a lone surrogate: it is not valid Unicode text"
        )
    return value
