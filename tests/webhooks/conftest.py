"""Webhooks on the engine tests' catalog; private addresses allowed for the loopback receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from saassy.config import Settings
from tests.dispatch.conftest import CATALOG, engine, engine_factory, fake_runtime  # noqa: F401
from tests.webhooks.receiver import Receiver, running


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CATALOG, webhooks_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as started:
        yield started
