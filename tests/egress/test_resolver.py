"""The host's resolver behind a timeout, and the names the operator pins."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from saassy.egress import ResolveFailed, SystemResolver
from saassy.egress.resolver import parse_pinned_hosts


async def test_the_system_resolver_answers_from_the_host() -> None:
    addresses = await SystemResolver().resolve("localhost")
    assert ip_address("127.0.0.1") in addresses or ip_address("::1") in addresses
    assert len(addresses) == len(set(addresses))


async def test_a_name_that_does_not_exist_fails_cleanly() -> None:
    # `.invalid` never resolves (RFC 6761); with no DNS here the lookup may time out instead.
    with pytest.raises(ResolveFailed) as caught:
        await SystemResolver(timeout_s=2).resolve("no-such-name.invalid")
    assert caught.value.host == "no-such-name.invalid"


def test_pinned_names_are_normalised() -> None:
    pinned = parse_pinned_hosts({"Allowed.TEST.": "127.0.0.1", "v6.test": "::1"})
    assert pinned == {"allowed.test": ip_address("127.0.0.1"), "v6.test": ip_address("::1")}


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ({"bad name": "127.0.0.1"}, "'bad name' is not a host name"),
        ({"10.0.0.1": "127.0.0.1"}, "'10.0.0.1' is not a host name"),
        ({"ok.test": "localhost"}, "'ok.test': 'localhost' is not an IP address"),
    ],
)
def test_a_bad_pinned_entry_is_named(hosts: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_pinned_hosts(hosts)
