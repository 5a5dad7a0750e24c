"""The vault's key ring: which keys seal tenant data, and how a value is bound to its owner.

`SAASSY_VAULT_KEYS` lists url-safe base64 keys of 32 random bytes, newest first. Each
organization gets its own keys, derived from every ring key with HKDF-SHA256 (the organization id
in `info`); a MultiFernet over them seals with the newest and opens with any, so an old key keeps
working until `saassy vault rotate` has re-sealed everything with the new one. The sealed
payload repeats the item's kind and name, checked on opening: a row copied to another name or
another organization does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
DERIVATION_INFO = b"saassy vault v1 organization "
MAKE_A_KEY = (
    "python -c 'import secrets, base64; "
    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
)


class VaultKeyError(ValueError):
    """A vault key is missing, malformed or unsafe; the message never contains a key."""


class SealBroken(ValueError):
    """A sealed value does not open: no key of the ring made it, or it belongs elsewhere."""


def decode_key(text: str) -> bytes:
    """One ring key: url-safe base64 (padding optional) of exactly 32 bytes."""
    text = text.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VaultKeyError("is not url-safe base64") from exc
    if len(raw) != KEY_BYTES:
        raise VaultKeyError(f"is not url-safe base64 of {KEY_BYTES} bytes")
    return raw


def parse_ring(text: str) -> list[bytes]:
    """`["k2", "k1"]` or `k2,k1`, newest first; errors say which key, never what it is."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VaultKeyError("is not a valid JSON list") from exc
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise VaultKeyError("must be a JSON list of strings")
    else:
        items = text.split(",")
    if not items or not any(item.strip() for item in items):
        raise VaultKeyError("lists no key")
    keys: list[bytes] = []
    for position, item in enumerate(items, start=1):
        try:
            key = decode_key(item)
        except VaultKeyError as exc:
            raise VaultKeyError(f"key {position} of {len(items)} {exc}") from None
        if key in keys:
            raise VaultKeyError(f"key {position} of {len(items)} repeats an earlier key")
        keys.append(key)
    return keys


def _organization_fernet(key: bytes, organization_id: uuid.UUID) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=DERIVATION_INFO + organization_id.bytes,
    ).derive(key)
    return Fernet(base64.urlsafe_b64encode(derived))


class KeyRing:
    """Seals and opens vault values with per-organization keys derived from the ring."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise VaultKeyError("the vault key ring is empty")
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} keys)"

    def _ring(self, organization_id: uuid.UUID) -> MultiFernet:
        return MultiFernet([_organization_fernet(key, organization_id) for key in self._keys])

    def seal(self, organization_id: uuid.UUID, kind: str, name: str, value: str) -> bytes:
        """The value as a token only this organization's keys open, bound to kind and name."""
        payload = json.dumps({"kind": kind, "name": name, "value": value}, ensure_ascii=False)
        return self._ring(organization_id).encrypt(payload.encode())

    def open(self, organization_id: uuid.UUID, kind: str, name: str, sealed: bytes) -> str:
        """The value sealed for exactly this organization, kind and name."""
        try:
            payload = json.loads(self._ring(organization_id).decrypt(sealed))
        except InvalidToken as exc:
            raise SealBroken("no key of the vault key ring opens it") from exc
        if payload.get("kind") != kind or payload.get("name") != name:
            raise SealBroken("it was sealed for another vault item")
        value: str = payload["value"]
        return value

    def reseal(self, organization_id: uuid.UUID, sealed: bytes) -> bytes:
        """The same payload sealed with the newest key (MultiFernet.rotate)."""
        try:
            return self._ring(organization_id).rotate(sealed)
        except InvalidToken as exc:
            raise SealBroken("no key of the vault key ring opens it") from exc

    def is_current(self, organization_id: uuid.UUID, sealed: bytes) -> bool:
        """Whether the newest key alone opens it (nothing to re-seal)."""
        try:
            _organization_fernet(self._keys[0], organization_id).decrypt(sealed)
        except InvalidToken:
            return False
        return True
