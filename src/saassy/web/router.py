"""The dashboard (server-rendered); a shell for now."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home() -> str:
    return "<!doctype html><title>Saassy</title><h1>Saassy</h1><a href='/api/docs'>API docs</a>"
