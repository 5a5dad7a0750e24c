"""What counts as a secret key (`SAASSY_SECRET_KEY`), and development's own key file.

Whoever knows the secret key can sign in as anyone: it signs access tokens and device cookies
and seals e-mail at rest. A value counts when it holds at least 32 bytes once decoded (hex and
base64, url-safe or standard, are decoded; anything else counts as its UTF-8 bytes), when those
bytes take at least 16 different values (a repeated character or a short pattern is no secret),
and when it is none of the values Saassy's own source ever published. `saassy dev` makes a random
key once per data dir; every other command that signs or verifies tokens refuses to start
without one, whatever `SAASSY_ENV` says.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from pathlib import Path

from saassy.kit.key_file import private_key_text

MIN_KEY_BYTES = 32
MIN_DISTINCT_BYTES = 16
KEY_FILE = "secret.key"
MAKE_A_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'  # noqa: S105
# Public values (the development default of earlier versions): a token signed with one of them
# must never verify anywhere, so they are refused as keys.
PUBLISHED_SECRETS = frozenset({"dev-insecure-secret-change-me-0123456789"})

_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class SecretKeyError(ValueError):
    """The secret key is missing or weak; the message never contains the key."""


def key_bytes(text: str) -> bytes:
    """The key material a value carries: decoded hex or base64, else its UTF-8 bytes."""
    text = text.strip()
    if _HEX.fullmatch(text) and len(text) % 2 == 0:
        return bytes.fromhex(text)
    if _BASE64.fullmatch(text):
        unpadded = text.rstrip("=").replace("+", "-").replace("/", "_")
        try:
            return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        except (binascii.Error, ValueError):
            pass  # not base64 after all (a length no encoding produces): count it as text
    return text.encode("utf-8", errors="surrogatepass")


def check_secret_key(text: str) -> None:
    """Raise SecretKeyError saying why `text` is not a usable secret key."""
    if text.strip() in PUBLISHED_SECRETS:
        raise SecretKeyError(
            "is a value published in Saassy's source, known to anyone; "
            f"make one with {MAKE_A_SECRET}"
        )
    material = key_bytes(text)
    if len(material) < MIN_KEY_BYTES:
        raise SecretKeyError(
            f"holds {len(material)} bytes, at least {MIN_KEY_BYTES} random bytes are needed; "
            f"make one with {MAKE_A_SECRET}"
        )
    if len(set(material)) < MIN_DISTINCT_BYTES:
        raise SecretKeyError(
            f"repeats a few characters, it is not random; make one with {MAKE_A_SECRET}"
        )


def missing_secret_key_message() -> str:
    return (
        "SAASSY_SECRET_KEY must be set: it signs and verifies access tokens; use at least "
        f"{MIN_KEY_BYTES} random bytes, e.g. the output of {MAKE_A_SECRET} "
        "(only `saassy dev` makes its own)"
    )


def development_secret_key(data_dir: Path) -> str:
    """`saassy dev`'s key: made once per data dir (mode 0600), then reused."""
    return private_key_text(data_dir / KEY_FILE, lambda: secrets.token_urlsafe(48))


def existing_development_secret_key(data_dir: Path) -> str | None:
    """The key `saassy dev` made in `data_dir`, if it did (another command never makes one:
    what it seals must open in the server that runs on the data dir)."""
    if not (data_dir / KEY_FILE).exists():
        return None
    return development_secret_key(data_dir)
