"""Refresh-token rotation with reuse detection, and logout.

Each login starts a family; every refresh uses up one token and adds its successor to the family.
A used token presented again means two parties hold the chain (one of them stole it), so the
whole family is revoked and everyone holding it must sign in again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import RefreshTokenRepository, UserRepository
from saassy.accounts.service import SignedIn, sign_in
from saassy.config import Settings
from saassy.kit.errors import Unauthorized
from saassy.kit.security import token_digest
from saassy.kit.time import utcnow


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"


class RefreshTokenExpired(Unauthorized):
    code = "refresh_token_expired"


class RefreshTokenRevoked(Unauthorized):
    """Raised after the token's family was revoked; the caller must commit that revocation."""

    code = "refresh_token_revoked"


class RefreshTokenReused(RefreshTokenRevoked):
    code = "refresh_token_reused"


async def rotate_refresh_token(
    session: AsyncSession, settings: Settings, refresh_token: str
) -> SignedIn:
    """Use up `refresh_token` and answer with a new pair in the same family."""
    tokens = RefreshTokenRepository(session)
    token = await tokens.get_by_digest(token_digest(refresh_token))
    if token is None:
        raise InvalidRefreshToken("The refresh token is not valid.")
    now = utcnow()
    if token.used_at is not None:
        await tokens.revoke_family(token.family_id, now)
        raise RefreshTokenReused(
            "This refresh token was already used; every session of its family is now revoked."
        )
    if token.revoked_at is not None:
        await tokens.revoke_family(token.family_id, now)
        raise RefreshTokenRevoked("The refresh token was revoked.")
    if token.expires_at <= now:
        raise RefreshTokenExpired("The refresh token has expired; sign in again.")
    if not await tokens.mark_used(token.id, now):
        # A concurrent refresh used it between our read and this write: that is reuse too.
        await tokens.revoke_family(token.family_id, now)
        raise RefreshTokenReused(
            "This refresh token was already used; every session of its family is now revoked."
        )
    user = await UserRepository(session).get(token.user_id)
    if user is None or user.disabled_at is not None:
        await tokens.revoke_family(token.family_id, now)
        raise RefreshTokenRevoked("The refresh token was revoked.")
    return await sign_in(session, settings, user, family_id=token.family_id)


async def end_session(session: AsyncSession, refresh_token: str) -> None:
    """Log out: revoke the token's whole family; an unknown token is silently accepted."""
    tokens = RefreshTokenRepository(session)
    token = await tokens.get_by_digest(token_digest(refresh_token))
    if token is not None:
        await tokens.revoke_family(token.family_id, utcnow())
