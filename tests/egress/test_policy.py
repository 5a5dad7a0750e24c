"""`network_allow` entries: what parses, what each one opens, what stops start-up."""

from __future__ import annotations

import pytest

from saassy.egress import EgressPolicy, normalise_allow_entry
from saassy.egress.destination import parse_authority


def permits(entries: list[str], target: str) -> bool:
    return EgressPolicy.from_allow_list(entries).permits(parse_authority(target, None))


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM.", "api.example.com"),
        ("api.example.com:8443", "api.example.com:8443"),
        ("*.Example.com", "*.example.com"),
        ("*.example.com:8443", "*.example.com:8443"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("203.0.113.5", "203.0.113.5"),
        ("203.0.113.5:8080", "203.0.113.5:8080"),
        ("[2001:DB8::1]:443", "[2001:db8::1]:443"),
        ("2001:db8:0::1", "[2001:db8::1]"),
        ("_dmarc.example.com", "_dmarc.example.com"),
    ],
)
def test_entries_are_normalised(entry: str, canonical: str) -> None:
    assert normalise_allow_entry(entry) == canonical
    assert normalise_allow_entry(canonical) == canonical


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("", "empty"),
        ("api example.com", "not a valid host name"),
        ("http://api.example.com", "not a port"),
        ("api.example.com:0", "not a port"),
        ("api.example.com:65536", "not a port"),
        ("api.example.com:https", "not a port"),
        ("*", "not a valid host name"),
        ("*.*.example.com", "not a valid host name"),
        ("a*.example.com", "not a valid host name"),
        ("*.203.0.113.5", "a wildcard applies to names"),
        ("127.1", "cannot end in a number"),
        ("0x7f.1", "cannot end in a number"),
        ("[2001:db8::1", "without a closing"),
        ("[api.example.com]", "not a valid IP address"),
        ("fe80::1%eth0", "zone"),
        ("-bad-.example.com", "not a valid host name"),
        ("a" * 64 + ".example.com", "not a valid host name"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match="is not a valid network_allow entry") as caught:
        normalise_allow_entry(entry)
    assert repr(entry) in str(caught.value)
    assert why in str(caught.value)


def test_a_bare_entry_opens_ports_80_and_443_only() -> None:
    entries = ["api.example.com"]
    assert permits(entries, "api.example.com:443")
    assert permits(entries, "api.example.com:80")
    assert not permits(entries, "api.example.com:8443")
    assert not permits(entries, "api.example.com:22")
    assert not permits(entries, "other.example.com:443")


def test_a_port_entry_opens_that_port_only() -> None:
    entries = ["api.example.com:8443"]
    assert permits(entries, "API.example.com.:8443")
    assert not permits(entries, "api.example.com:443")


def test_a_wildcard_matches_any_subdomain_but_not_the_apex() -> None:
    entries = ["*.example.com"]
    assert permits(entries, "a.example.com:443")
    assert permits(entries, "a.b.example.com:80")
    assert not permits(entries, "example.com:443")
    assert not permits(entries, "badexample.com:443")
    assert not permits(entries, "example.com.evil.test:443")
    assert not permits(entries, "a.example.com:8443")


def test_ip_entries_match_the_same_address_in_any_spelling() -> None:
    entries = ["203.0.113.5", "[2001:db8::1]:8443"]
    assert permits(entries, "203.0.113.5:443")
    assert permits(entries, "[2001:0db8:0000::1]:8443")
    assert not permits(entries, "[2001:db8::1]:443")
    assert not permits(entries, "203.0.113.6:443")


def test_an_empty_list_means_any_destination() -> None:
    policy = EgressPolicy.from_allow_list([])
    assert policy.any_public
    assert policy.permits(parse_authority("anything.example:22", None))
    assert not EgressPolicy.from_allow_list(["a.example"]).any_public


def test_international_names_match_their_ascii_form() -> None:
    assert permits(["bücher.example"], "xn--bcher-kva.example:443")
    assert permits(["xn--bcher-kva.example"], "BÜCHER.example:443")
