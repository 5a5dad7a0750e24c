"""The egress proxy as the sandbox runtime sees it (`runtime.base.EgressGateway`)."""

from __future__ import annotations

import socket
from collections.abc import Callable

from saassy.egress.policy import EgressPolicy
from saassy.egress.proxy import EgressProxy
from saassy.egress.session import EgressSession
from saassy.runtime.base import EgressLink, EgressUsage


class RuntimeGateway:
    def __init__(self, proxy: EgressProxy) -> None:
        self._proxy = proxy

    async def attach(
        self,
        sandbox: str,
        allow: tuple[str, ...],
        listener: socket.socket,
        on_notice: Callable[[str], None],
    ) -> EgressLink:
        policy = EgressPolicy.from_allow_list(allow)
        return _Link(await self._proxy.attach(sandbox, policy, listener, on_notice))


class _Link:
    def __init__(self, session: EgressSession) -> None:
        self._session = session

    async def close(self) -> EgressUsage:
        stats = await self._session.close()
        return EgressUsage(
            bytes_out=stats.bytes_out,
            bytes_in=stats.bytes_in,
            connections=stats.allowed,
            refused=stats.refused,
            failed=stats.failed,
        )
