"""Where the key ring comes from: `SAASSY_VAULT_KEYS`, or in development a key file made once.

`saassy dev` must work with no setting at all, and secrets stored yesterday must still open
today, so development gets a random key kept in `<data dir>/vault.key` (see kit/key_file.py).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from saassy.kit.key_file import KeyFileError, private_key_text
from saassy.vault.keys import KEY_BYTES, MAKE_A_KEY, KeyRing, VaultKeyError, decode_key, parse_ring

KEY_FILE = "vault.key"


def build_keyring(vault_keys: str | None, *, development: bool, data_dir: Path) -> KeyRing:
    """The ring from `SAASSY_VAULT_KEYS`; in development without it, the data dir's key file."""
    if vault_keys is not None:
        try:
            return KeyRing(parse_ring(vault_keys))
        except VaultKeyError as exc:
            raise VaultKeyError(f"SAASSY_VAULT_KEYS: {exc}") from None
    if not development:
        raise VaultKeyError(missing_keys_message())
    return KeyRing([development_key(data_dir)])


def missing_keys_message() -> str:
    return (
        "SAASSY_VAULT_KEYS must be set outside development: url-safe base64 keys of 32 random "
        f"bytes, newest first, comma-separated or a JSON list (make one: {MAKE_A_KEY})"
    )


def development_key(data_dir: Path) -> bytes:
    """The data dir's own key: read it, or make it on first use."""
    path = data_dir / KEY_FILE
    try:
        text = private_key_text(path, _new_key)
    except KeyFileError as exc:
        raise VaultKeyError(str(exc)) from None
    try:
        return decode_key(text)
    except VaultKeyError as exc:
        raise VaultKeyError(f"{path}: the key {exc}") from None


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
