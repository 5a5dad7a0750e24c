"""Notifications on the engine tests' catalog (small plans, programs that exist everywhere)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from saassy.config import Settings
from tests.dispatch.conftest import CATALOG, engine, engine_factory, fake_runtime  # noqa: F401


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CATALOG, webhooks_allow_private=True)
