"""The key ring: per-organization keys, values bound to their item, old keys until rotated."""

from __future__ import annotations

import base64
import json
import secrets
import uuid

import pytest
from cryptography.fernet import Fernet, InvalidToken

from saassy.vault.keys import KeyRing, SealBroken, VaultKeyError, decode_key, parse_ring


def new_key() -> bytes:
    return secrets.token_bytes(32)


def text_of(*keys: bytes) -> str:
    return ",".join(base64.urlsafe_b64encode(key).decode() for key in keys)


ORG = uuid.uuid4()
OTHER_ORG = uuid.uuid4()


def test_a_sealed_value_opens_for_its_organization_kind_and_name_only() -> None:
    ring = KeyRing([new_key()])
    sealed = ring.seal(ORG, "secret", "API_TOKEN", "tok-ünïcode-123")

    assert ring.open(ORG, "secret", "API_TOKEN", sealed) == "tok-ünïcode-123"
    assert b"tok-" not in sealed
    with pytest.raises(SealBroken, match="no key"):
        ring.open(OTHER_ORG, "secret", "API_TOKEN", sealed)
    with pytest.raises(SealBroken, match="another vault item"):
        ring.open(ORG, "secret", "OTHER_TOKEN", sealed)
    with pytest.raises(SealBroken, match="another vault item"):
        ring.open(ORG, "browser_session", "API_TOKEN", sealed)


def test_each_organization_has_its_own_derived_key() -> None:
    key = new_key()
    sealed = KeyRing([key]).seal(ORG, "secret", "A", "value")
    # The ring key itself, used directly as a Fernet key, does not open an organization's item.
    with pytest.raises(InvalidToken):
        Fernet(base64.urlsafe_b64encode(key)).decrypt(sealed)


def test_an_old_key_opens_until_resealed_and_then_is_not_needed() -> None:
    old, new = new_key(), new_key()
    sealed = KeyRing([old]).seal(ORG, "secret", "A", "value")
    both = KeyRing([new, old])

    assert both.open(ORG, "secret", "A", sealed) == "value"
    assert not both.is_current(ORG, sealed)
    with pytest.raises(SealBroken):
        KeyRing([new]).open(ORG, "secret", "A", sealed)

    resealed = both.reseal(ORG, sealed)
    assert both.is_current(ORG, resealed)
    assert KeyRing([new]).open(ORG, "secret", "A", resealed) == "value"


def test_the_newest_key_seals() -> None:
    old, new = new_key(), new_key()
    sealed = KeyRing([new, old]).seal(ORG, "secret", "A", "value")
    assert KeyRing([new]).open(ORG, "secret", "A", sealed) == "value"
    with pytest.raises(SealBroken):
        KeyRing([old]).open(ORG, "secret", "A", sealed)


def test_reseal_refuses_what_no_key_opens() -> None:
    sealed = KeyRing([new_key()]).seal(ORG, "secret", "A", "value")
    with pytest.raises(SealBroken, match="no key"):
        KeyRing([new_key()]).reseal(ORG, sealed)


def test_the_ring_parses_a_list_or_comma_separated_keys_newest_first() -> None:
    first, second = new_key(), new_key()
    as_list = json.dumps([text_of(first), text_of(second)])
    assert parse_ring(as_list) == [first, second]
    assert parse_ring(f" {text_of(first)} , {text_of(second)} ") == [first, second]
    # Padding is optional: some tools strip it.
    assert parse_ring(text_of(first).rstrip("=")) == [first]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "lists no key"),
        ("[]", "lists no key"),
        ('["a", 3]', "JSON list of strings"),
        ("[not json", "not a valid JSON list"),
        ("too-short-a-key", "key 1 of 1 is not url-safe base64 of 32 bytes"),
        ("@@@@" * 11, "key 1 of 1 is not url-safe base64"),
    ],
)
def test_a_bad_ring_says_which_key_is_wrong_without_showing_it(text: str, problem: str) -> None:
    with pytest.raises(VaultKeyError, match=problem) as caught:
        parse_ring(text)
    if text:
        assert text not in str(caught.value)


def test_a_bad_second_key_is_named_by_position() -> None:
    good = text_of(new_key())
    leaked = base64.urlsafe_b64encode(b"sixteen-bytes-ok").decode()
    with pytest.raises(VaultKeyError, match="key 2 of 2") as caught:
        parse_ring(f"{good},{leaked}")
    assert good not in str(caught.value)
    assert leaked not in str(caught.value)
    with pytest.raises(VaultKeyError, match="key 2 of 2 repeats"):
        parse_ring(f"{good},{good}")


def test_nothing_shows_a_key_or_value() -> None:
    key = new_key()
    ring = KeyRing([key])
    assert repr(ring) == "KeyRing(1 keys)"
    assert text_of(key)[:20] not in repr(ring)
    assert decode_key(text_of(key)) == key
