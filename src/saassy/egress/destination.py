"""Where a sandbox wants to go: a host (a normalised name or an IP literal) and a port.

One parser for the catalog's allow-list entries and for the proxy's request targets, so an entry
and a request that name the same place compare equal: names lower-cased, trailing dot dropped,
IDNA-encoded; IP literals in their compressed form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import idna

IPAddress = IPv4Address | IPv6Address

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# Resolvers read `127.1`, `2130706433` or `0x7f.1` as addresses: such a "name" would slip past
# an allow-list written with names, so it is refused as one.
_NUMERIC = re.compile(r"0x[0-9a-f]*|[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME_LENGTH = 253


@dataclass(frozen=True)
class Destination:
    host: str  # a normalised name, or an IP literal's compressed text
    port: int
    address: IPAddress | None = None  # set when host is an IP literal

    def __str__(self) -> str:
        return f"{bracketed(self.host)}:{self.port}"


def bracketed(host: str) -> str:
    """`[2001:db8::1]` for an IPv6 literal, anything else as it is."""
    return f"[{host}]" if ":" in host else host


def normalise_name(name: str) -> str:
    """The ASCII, lower-case form of a host name, without a trailing dot; ValueError if invalid."""
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise ValueError("the host name is empty")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"not a valid international host name ({exc})") from exc
    text = text.lower()
    labels = text.split(".")
    if len(text) > MAX_NAME_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a valid host name")
    if _NUMERIC.fullmatch(labels[-1]):
        raise ValueError("a name cannot end in a number; write an IP address in dotted form")
    return text


def parse_host(text: str) -> tuple[str, IPAddress | None]:
    """A name or an IP literal (IPv6 with or without brackets), normalised."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ip_address(literal)
    except ValueError:
        if literal is not text or ":" in text:
            raise ValueError("not a valid IP address") from None
        return normalise_name(text), None
    if isinstance(address, IPv6Address) and address.scope_id:
        raise ValueError("an IPv6 address with a zone cannot be a destination")
    return str(address), address


def parse_authority(text: str, default_port: int | None) -> Destination:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal; ValueError if invalid."""
    host, port_text = _split_port(text)
    if port_text is None:
        if default_port is None:
            raise ValueError("a port is needed, as in host:443")
        port = default_port
    else:
        port = _parse_port(port_text)
    name, address = parse_host(host)
    return Destination(name, port, address)


def _split_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("an opening [ without a closing ]")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("only :port may follow ]")
        return text[: end + 1], rest[1:] if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None  # a name, or a bare IPv6 literal (several colons)


def _parse_port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)
