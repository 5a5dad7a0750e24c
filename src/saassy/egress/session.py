"""One sandbox's egress: the listener it was given, its connections and their figures."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from saassy.egress.gate import EgressGate
from saassy.egress.limits import ConnectionBudget, EgressLimits
from saassy.egress.policy import EgressPolicy
from saassy.egress.refusal import CONNECTION_ESTABLISHED, NOTICE_PREFIX, Outcome, Refused
from saassy.egress.relay import Meter, relay
from saassy.egress.request import read_request
from saassy.egress.upstream import Connector, connect_first

log = structlog.get_logger(__name__)

NoticeSink = Callable[[str], None]
# Short of descriptors or memory: wait and accept again rather than give up the listener.
TRANSIENT_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_RETRY_S = 0.1
# How long a refused client may take to read its answer before the socket closes.
ANSWER_LINGER_S = 1.0
SCRAP_BYTES = 4096


@dataclass(frozen=True)
class EgressStats:
    """A session's figures: payload bytes each way and what happened to each connection."""

    bytes_out: int  # sent by the sandbox to destinations (with forwarded HTTP request heads)
    bytes_in: int  # received by the sandbox from destinations
    allowed: int  # connections opened to a destination
    refused: int  # requests the proxy turned down (policy, address, bad request, limits)
    failed: int  # allowed requests whose destination could not be resolved or reached

    @property
    def egress_bytes(self) -> int:
        return self.bytes_out + self.bytes_in


class EgressSession:
    """Serves one sandbox's listener under its task type's policy until closed."""

    def __init__(
        self,
        sandbox: str,
        policy: EgressPolicy,
        listener: socket.socket,
        *,
        gate: EgressGate,
        connect: Connector,
        limits: EgressLimits,
        on_notice: NoticeSink | None,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.policy = policy
        self._listener = listener
        self._gate = gate
        self._connect = connect
        self._limits = limits
        self._budget = budget or ConnectionBudget(limits.max_connections_total)
        self._on_notice = on_notice
        self._meter = Meter()
        self._notices = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._answering: set[asyncio.Task[None]] = set()  # refusals still being read
        self._closing: asyncio.Task[EgressStats] | None = None
        listener.setblocking(False)
        self._accepting = asyncio.create_task(self._accept(), name=f"egress-{sandbox}")

    def stats(self) -> EgressStats:
        """The figures so far (bytes count as they are relayed, not when a connection ends)."""
        meter = self._meter
        return EgressStats(
            meter.bytes_out, meter.bytes_in, meter.allowed, meter.refused, meter.failed
        )

    async def close(self) -> EgressStats:
        """Stop listening, end every connection, and return the final figures; idempotent."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._shut_down())
        return await asyncio.shield(self._closing)

    async def _shut_down(self) -> EgressStats:
        self._accepting.cancel()
        await asyncio.gather(self._accepting, return_exceptions=True)
        self._listener.close()
        connections = [*self._connections, *self._answering]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        return self.stats()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(self._listener)
            except OSError as exc:
                if exc.errno not in TRANSIENT_ACCEPT_ERRORS:
                    log.warning("egress.listener_failed", sandbox=self.sandbox, error=str(exc))
                    return
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            client.setblocking(False)
            cap = self._limits.max_connections
            if len(self._connections) < cap and self._budget.take("connection"):
                self._track(self._connections, self._serve(client), "connection")
                continue
            refusal = Refused(503, f"more than {cap} connections open at once")
            if len(self._connections) < cap:
                refusal = Refused(503, "the platform's egress is at capacity; retry later")
            if len(self._answering) < cap and self._budget.take("answer"):
                self._track(self._answering, self._refuse(client, refusal), "answer")
            else:  # a flood: not even an answer
                self._record(refusal)
                client.close()

    def _track(
        self, tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None], kind: str
    ) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda _: self._budget.give(kind))

    async def _refuse(self, client: socket.socket, refusal: Refused) -> None:
        try:
            self._record(refusal)
            await self._answer(client, refusal)
        finally:
            client.close()

    async def _serve(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        limits = self._limits
        upstream: socket.socket | None = None
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                async with asyncio.timeout(limits.head_timeout_s):
                    request = await read_request(client, limits.max_head_bytes)
            except TimeoutError:
                raise Refused(408, f"no request within {limits.head_timeout_s:g} s") from None
            if request is None:
                return
            addresses = await self._gate.admit(self.policy, request.destination)
            upstream = await connect_first(
                self._connect, request.destination, addresses, limits.connect_timeout_s
            )
            self._meter.allowed += 1
            async with asyncio.timeout(limits.idle_timeout_s):
                if request.tunnel:
                    await loop.sock_sendall(client, CONNECTION_ESTABLISHED)
                if first := request.head + request.early_data:
                    await loop.sock_sendall(upstream, first)
                    self._meter.bytes_out += len(first)
            await relay(
                client,
                upstream,
                self._meter,
                buffer_bytes=limits.buffer_bytes,
                idle_timeout_s=limits.idle_timeout_s,
            )
        except Refused as refusal:
            self._record(refusal)
            await self._answer(client, refusal)
        except OSError:
            pass  # a peer went away (or stalled past the idle timeout) mid-exchange
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    def _record(self, refusal: Refused) -> None:
        if refusal.outcome is Outcome.failed:
            self._meter.failed += 1
        else:
            self._meter.refused += 1
        log.debug(
            "egress.refused", sandbox=self.sandbox, status=refusal.status, why=refusal.message
        )
        self._notify(refusal.notice)

    def _notify(self, notice: str) -> None:
        if self._on_notice is None:
            return
        self._notices += 1
        if self._notices > self._limits.max_notices + 1:
            return
        if self._notices > self._limits.max_notices:
            notice = NOTICE_PREFIX + "further refusals are counted but not shown"
        try:
            self._on_notice(notice)
        except Exception:
            log.exception("egress.notice_failed", sandbox=self.sandbox)

    async def _answer(self, client: socket.socket, refusal: Refused) -> None:
        loop = asyncio.get_running_loop()
        scrap = bytearray(SCRAP_BYTES)
        with contextlib.suppress(OSError):  # TimeoutError included
            async with asyncio.timeout(ANSWER_LINGER_S):
                await loop.sock_sendall(client, refusal.reply())
                client.shutdown(socket.SHUT_WR)
                # Read what the client still sends: closing with unread bytes would reset the
                # connection and could destroy the answer before the client reads it.
                while await loop.sock_recv_into(client, scrap):
                    pass
