"""Where the key ring comes from: `SAASSY_VAULT_KEYS`, or in development a key file made once.

`saassy dev` must work with no setting at all, and secrets stored yesterday must still open
today, so development gets a random key kept in `<data dir>/vault.key` (mode 0600). The file is
refused when anyone but its owner may read it or when another user owns it: such a key may
already be known to someone else.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

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
    """The data dir's own key: read it, or make it on first use (safe against a racing twin)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES))
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
            file.flush()
            os.fsync(file.fileno())
        # A hard link never replaces: of two processes starting at once, one key wins.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise VaultKeyError(f"{path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.geteuid():
            raise VaultKeyError(
                f"{path}: owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); "
                "refusing a key someone else controls"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise VaultKeyError(
                f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets other users read it; "
                f"make it private with `chmod 600 {path}`"
            )
        text = file.read().decode("ascii", errors="replace")
    try:
        return decode_key(text)
    except VaultKeyError as exc:
        raise VaultKeyError(f"{path}: the key {exc}") from None
