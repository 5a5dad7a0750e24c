"""The egress proxy: a sandbox's only way out, one session per sandbox listener.

The runtime creates a listening socket inside the sandbox's network namespace (127.0.0.1:3128
there) and hands it to `attach` with the task type's policy: the listener says whose traffic it
is, so no credential travels with a request. The proxy speaks HTTP CONNECT and absolute-form
HTTP, resolves names itself, refuses what the policy or the address ranges do not allow, and
meters every byte it relays.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

from saassy.egress.addresses import AddressGuard, parse_private_ranges
from saassy.egress.gate import EgressGate
from saassy.egress.limits import ConnectionBudget, EgressLimits
from saassy.egress.policy import EgressPolicy
from saassy.egress.resolver import Resolver, parse_pinned_hosts
from saassy.egress.session import EgressSession, NoticeSink
from saassy.egress.upstream import Connector, open_tcp


class EgressProxy:
    """What every session shares: the resolver, the opened ranges, the pinned names, limits."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        allow_private: Iterable[str] = (),
        hosts: Mapping[str, str] | None = None,
        limits: EgressLimits | None = None,
        connect: Connector = open_tcp,
    ) -> None:
        guard = AddressGuard(parse_private_ranges(allow_private))
        self._gate = EgressGate(resolver, guard, parse_pinned_hosts(hosts or {}))
        self._limits = limits or EgressLimits()
        self._budget = ConnectionBudget(self._limits.max_connections_total)
        self._connect = connect

    async def attach(
        self,
        sandbox: str,
        policy: EgressPolicy,
        listener: socket.socket,
        on_notice: NoticeSink | None = None,
    ) -> EgressSession:
        """Serve `listener` (listening already; the session owns and closes it) under `policy`."""
        return EgressSession(
            sandbox,
            policy,
            listener,
            gate=self._gate,
            connect=self._connect,
            limits=self._limits,
            on_notice=on_notice,
            budget=self._budget,
        )
