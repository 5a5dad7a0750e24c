"""One HTTP attempt at a message: POST to the address the destination check resolved.

The request goes to that address itself (the Host header and, for https, the TLS server name
and certificate check still use the URL's host), so a second DNS lookup cannot send it
elsewhere. Redirects are not followed: a 3xx is a failed attempt, as the spec says.

An attempt has one deadline for all of it (resolving, connecting, sending, reading the answer's
head): httpx's timeout is per read, so a receiver trickling a byte at a time would otherwise
hold the attempt for as long as it likes. The answer is read raw and only its head: a gzip bomb
is never inflated, and the body is asked for uncompressed (`Accept-Encoding: identity`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address

import httpx

from saassy.egress.destination import IPAddress
from saassy.webhooks.destination import Destination, DestinationRefused, resolve

RESPONSE_BODY_CHARS = 1024
# The bytes of the answer read at most: enough for RESPONSE_BODY_CHARS of any UTF-8.
RESPONSE_HEAD_BYTES = RESPONSE_BODY_CHARS * 4
TIMEOUT_S = 15.0
USER_AGENT = "Saassy-Webhooks/1"


@dataclass(frozen=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None


def pinned_url(destination: Destination, address: IPAddress) -> str:
    host = f"[{address}]" if isinstance(address, IPv6Address) else str(address)
    return destination.parts._replace(netloc=f"{host}:{destination.port}").geturl()


def host_header(destination: Destination) -> str:
    default = 443 if destination.parts.scheme == "https" else 80
    host = destination.parts.hostname or destination.host
    if ":" in host:
        host = f"[{host}]"
    return host if destination.port == default else f"{host}:{destination.port}"


async def post_message(
    client: httpx.AsyncClient,
    destination: Destination,
    headers: dict[str, str],
    body: bytes,
    *,
    allow_private: bool,
    timeout_s: float = TIMEOUT_S,
) -> AttemptResult:
    """One attempt, over within `timeout_s` whatever the receiver does."""
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        async with asyncio.timeout(timeout_s):
            return await _attempt(client, destination, headers, body, allow_private, took)
    except TimeoutError:
        return AttemptResult(False, None, took(), f"no answer within {timeout_s:g} s", None)


async def _attempt(
    client: httpx.AsyncClient,
    destination: Destination,
    headers: dict[str, str],
    body: bytes,
    allow_private: bool,
    took: Callable[[], int],
) -> AttemptResult:
    try:
        address = await resolve(destination, allow_private=allow_private)
    except DestinationRefused as exc:
        return AttemptResult(False, None, took(), f"refused: {exc}", None)
    request_headers = {
        **headers,
        "host": host_header(destination),
        "user-agent": USER_AGENT,
        "accept-encoding": "identity",
    }
    extensions = {"sni_hostname": destination.host} if destination.parts.scheme == "https" else {}
    try:
        async with client.stream(
            "POST",
            pinned_url(destination, address),
            content=body,
            headers=request_headers,
            extensions=extensions,
            follow_redirects=False,
        ) as response:
            head = await _read_head(response)
    except httpx.HTTPError as exc:
        # The message may name the address connected to: the tenant sees their host instead.
        failure = f"{type(exc).__name__}: {exc}".replace(str(address), destination.host)
        return AttemptResult(False, None, took(), failure[:500], None)
    succeeded = 200 <= response.status_code < 300
    error = None if succeeded else f"HTTP {response.status_code}"
    return AttemptResult(succeeded, response.status_code, took(), error, _shown(response, head))


async def _read_head(response: httpx.Response) -> bytes:
    """The start of the answer as sent (never inflated): a receiver cannot make the relay
    hold, or decompress, a large body."""
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= RESPONSE_HEAD_BYTES:
            break
    return head[:RESPONSE_HEAD_BYTES]


def _shown(response: httpx.Response, head: bytes) -> str | None:
    """What the delivery log keeps of the answer: its first characters, as text."""
    if not head:
        return None
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"({encoding}-encoded answer not shown)"[:RESPONSE_BODY_CHARS]
    # PostgreSQL's text cannot hold NUL.
    return head.decode(errors="replace").replace("\x00", "\ufffd")[:RESPONSE_BODY_CHARS]


def new_client() -> httpx.AsyncClient:
    """No proxy from the environment: it would connect to the name, not the checked address.
    The attempt's own deadline (`post_message`) bounds it; httpx's per-read timeout is a floor."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=TIMEOUT_S)
