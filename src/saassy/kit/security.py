"""Security primitives: opaque tokens, password hashing, access tokens, sealed text."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from saassy.kit.time import utcnow

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "saassy-api"


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random secret for links and refresh tokens."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """What is stored for a high-entropy secret: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class PasswordHasher:
    """Argon2id; hashing runs in a worker thread so it never stalls the event loop."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
        )
        # Verified against when the account does not exist, so both answers take as long.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """(valid, a new hash when the parameters changed); a missing hash still costs a verify."""
        if stored_hash is None:
            await asyncio.to_thread(self._hash.verify, password, self._dummy)
            return False, None
        return await asyncio.to_thread(self._hash.verify_and_update, password, stored_hash)


@functools.cache
def password_hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    expires_at: datetime
    token_id: str


def issue_access_token(user_id: uuid.UUID, secret: str, ttl: timedelta) -> tuple[str, datetime]:
    now = utcnow()
    expires_at = now + ttl
    claims = {
        "sub": str(user_id),
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": expires_at,
        "jti": secrets.token_hex(8),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), expires_at


class InvalidAccessToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_access_token(token: str, secret: str) -> AccessClaims:
    """Verify signature, algorithm, audience and expiry; anything else is InvalidAccessToken."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["sub", "exp", "iat", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidAccessToken("token_expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidAccessToken("invalid_token") from exc
    if claims.get("typ") != "access":
        raise InvalidAccessToken("invalid_token")
    try:
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, TypeError) as exc:
        raise InvalidAccessToken("invalid_token") from exc
    return AccessClaims(
        user_id=user_id,
        expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
        token_id=str(claims["jti"]),
    )


def derived_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose: a key used for two things could be played off against
    itself (a sealed body passed off as a signature)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


class Sealer:
    """Authenticated encryption for text at rest (e.g. e-mail bodies that carry sign-in links)."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derived_key(secret, purpose)))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("sealed text cannot be opened with this secret") from exc
