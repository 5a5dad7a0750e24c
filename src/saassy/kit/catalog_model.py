"""The base of what an operator declares in `saassy.toml`: every key honoured or refused.

A key the model does not have is refused with a suggestion; a key the product means to offer
but does not implement yet is listed in `not_supported` and refused with the reason, so an
operator never relies on a setting that nothing keeps. `catalog_error_lines` turns a
validation failure into `dotted.key: message` lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

UNKNOWN_KEY = "unknown_key"
NOT_SUPPORTED = "not_supported"


class CatalogModel(BaseModel):
    """Frozen, and strict about its keys (`extra="forbid"` stays as the last line of defence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # key -> why it is refused, e.g. {"connected_accounts": "connections come later"}
    not_supported: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = sorted(cls.model_fields)
        for key in data:
            if key in cls.not_supported:
                raise PydanticCustomError(
                    NOT_SUPPORTED,
                    "not supported yet ({why})",
                    {"key": key, "why": cls.not_supported[key]},
                )
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
                raise PydanticCustomError(
                    UNKNOWN_KEY, "unknown key ({hint})", {"key": key, "hint": hint}
                )
        return data


def catalog_error_lines(exc: ValidationError) -> list[str]:
    """One `dotted.key: message` per error, the key at fault named even when a model refused it."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        if err["type"] in (UNKNOWN_KEY, NOT_SUPPORTED):
            loc.append(str(err.get("ctx", {})["key"]))
        elif "at" in err.get("ctx", {}):  # a check across keys names the one at fault itself
            loc = [str(err["ctx"]["at"])]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{'.'.join(loc) or '(top level)'}: {message}")
    return lines
