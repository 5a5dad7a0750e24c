"""Cursor pagination: `?limit=&cursor=`; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from saassy.kit.errors import ValidationFailed

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


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("The cursor is not valid.", field="cursor") from exc


def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)
