"""One HTTP attempt at a message: POST to the address the destination check resolved.

The request goes to that address itself (the Host header and, for https, the TLS server name
and certificate check still use the URL's host), so a second DNS lookup cannot send it
elsewhere. Redirects are not followed: a 3xx is a failed attempt, as the spec says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import IPv6Address

import httpx

from saassy.egress.destination import IPAddress
from saassy.webhooks.destination import Destination, DestinationRefused, resolve

RESPONSE_BODY_CHARS = 1024
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
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        address = await resolve(destination, allow_private=allow_private)
    except DestinationRefused as exc:
        return AttemptResult(False, None, took(), f"refused: {exc}", None)
    request_headers = {**headers, "host": host_header(destination), "user-agent": USER_AGENT}
    extensions = {"sni_hostname": destination.host} if destination.parts.scheme == "https" else {}
    try:
        async with client.stream(
            "POST",
            pinned_url(destination, address),
            content=body,
            headers=request_headers,
            extensions=extensions,
            timeout=timeout_s,
            follow_redirects=False,
        ) as response:
            head = await _read_head(response)
    except httpx.HTTPError as exc:
        return AttemptResult(False, None, took(), f"{type(exc).__name__}: {exc}"[:500], None)
    text = head.decode(errors="replace")[:RESPONSE_BODY_CHARS] if head else None
    succeeded = 200 <= response.status_code < 300
    error = None if succeeded else f"HTTP {response.status_code}"
    return AttemptResult(succeeded, response.status_code, took(), error, text)


async def _read_head(response: httpx.Response) -> bytes:
    """The start of the answer only: a receiver cannot make the relay hold a large body."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= RESPONSE_BODY_CHARS * 4:
            break
    return head


def new_client() -> httpx.AsyncClient:
    """No proxy from the environment: it would connect to the name, not the checked address."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False)
