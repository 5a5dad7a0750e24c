"""`/api/v1/usage`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/usage", tags=["usage"])
