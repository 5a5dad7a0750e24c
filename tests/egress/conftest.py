"""A proxy session on a loopback listener per test, and the servers it may reach."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from saassy.egress import EgressLimits, EgressPolicy, EgressProxy, EgressSession, Resolver
from tests.egress.support import Echo, MappedResolver, Origin


@dataclass
class Egress:
    session: EgressSession
    port: int
    notices: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


OpenEgress = Callable[..., Awaitable[Egress]]


def loopback_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


@pytest.fixture
async def open_egress() -> AsyncIterator[OpenEgress]:
    """Start a session: `await open_egress(["allowed.test:8080"], hosts={...}, ...)`."""
    sessions: list[EgressSession] = []

    async def start(
        allow: Iterable[str] = (),
        *,
        hosts: Mapping[str, str] | None = None,
        resolver: Resolver | None = None,
        allow_private: Iterable[str] = (),
        limits: EgressLimits | None = None,
        **proxy_options: Any,
    ) -> Egress:
        proxy = EgressProxy(
            resolver or MappedResolver(),
            allow_private=allow_private,
            hosts=hosts,
            limits=limits,
            **proxy_options,
        )
        listener = loopback_listener()
        port = listener.getsockname()[1]
        notices: list[str] = []
        session = await proxy.attach(
            "test-sandbox", EgressPolicy.from_allow_list(allow), listener, notices.append
        )
        sessions.append(session)
        return Egress(session, port, notices)

    yield start
    for session in sessions:
        await session.close()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.stop()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = await Echo().start()
    yield server
    await server.stop()
