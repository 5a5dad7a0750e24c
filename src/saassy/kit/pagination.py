"""Cursor pagination: `?limit=&cursor=`; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from saassy.kit.errors import SaassyError
from saassy.kit.time import as_utc

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    after: tuple[datetime, uuid.UUID] | None


def encode_cursor(created_at: datetime, id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_LENGTH = 200


class InvalidCursor(SaassyError):
    """A cursor the API did not hand out (mangled, or made by hand)."""

    status_code = 400
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not valid; start again from the first page.", field="cursor"
        )


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The cursor's (created_at in UTC, id); InvalidCursor if it is not one `encode_cursor` made.

    The time is converted to UTC here: a hand-made one such as `0001-01-01T00:00:00+14:00` has no
    UTC value (OverflowError), and must be refused as a bad cursor rather than fail the query.
    """
    if len(cursor) > MAX_CURSOR_LENGTH:  # ours are under 100; bounds json's nesting too
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, id = json.loads(raw)
        return as_utc(datetime.fromisoformat(created_at)), uuid.UUID(id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursor() from exc


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


R = TypeVar("R")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def keyset(
    statement: S,
    params: PageParams,
    created_at: InstrumentedAttribute[datetime],
    id: InstrumentedAttribute[uuid.UUID],
    *,
    newest_first: bool = False,
) -> S:
    """Oldest first (or newest first), past the cursor's (created_at, id), one row more than the
    page to peek."""
    if params.after is not None:
        after_at, after_id = params.after
        after_at = as_utc(after_at)  # a hand-made cursor may carry a naive time
        # A row-value comparison, not `a < x OR (a = x AND b < y)`: SQLite and PostgreSQL seek
        # an index on (..., created_at, id) with it, so page 100 costs what page 1 does; the OR
        # form scanned every row before the cursor (bench/task_list.py measures both).
        key, cursor = tuple_(created_at, id), tuple_(after_at, after_id)
        statement = statement.where(key < cursor if newest_first else key > cursor)
    order = (created_at.desc(), id.desc()) if newest_first else (created_at, id)
    return statement.order_by(*order).limit(params.limit + 1)


def page_of(
    rows: Sequence[R], params: PageParams, key: Callable[[R], tuple[datetime, uuid.UUID]]
) -> tuple[list[R], str | None]:
    """The page's rows and the cursor of the next page (None on the last one)."""
    items = list(rows[: params.limit])
    more = len(rows) > params.limit
    return items, encode_cursor(*key(items[-1])) if more else None
