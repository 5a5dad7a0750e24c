"""A second server process on the test's database, for what one process remembers and another
does not: import `other_app` and `other` (fixtures) and `Clock` into a test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from saassy.app import create_app
from saassy.config import Settings
from tests.conftest import client_for


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A second server process on the same database."""
    application = create_app(settings, background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def other(other_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(other_app) as c:
        yield c
