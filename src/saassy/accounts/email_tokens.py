"""Single-use tokens e-mailed to an address, one table for every purpose: signing in (magic
links), resetting a password, verifying the address, confirming an account's deletion.

Only a token's digest is stored. A token redeems once, before it expires, and only for the
purpose it was sent for: a sign-in link cannot reset a password.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import MagicLinkRepository
from saassy.kit.errors import Unauthorized
from saassy.kit.security import new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import MagicLink


class Purpose(enum.StrEnum):
    sign_in = "sign_in"
    reset_password = "reset_password"  # noqa: S105 - a purpose, not a password
    verify_email = "verify_email"
    # Re-authentication of a passwordless account before it is deleted (privacy/erasure.py).
    delete_account = "delete_account"


@dataclass(frozen=True)
class Wording:
    code: str  # the error codes' prefix
    noun: str  # for messages: "This sign-in link has expired"


WORDING = {
    Purpose.sign_in: Wording("magic_link", "sign-in link"),
    Purpose.reset_password: Wording("password_reset", "password reset link"),
    Purpose.verify_email: Wording("email_verification", "verification link"),
    Purpose.delete_account: Wording("deletion_code", "confirmation code"),
}


class InvalidEmailToken(Unauthorized):
    code = "token_invalid"


async def issue_email_token(
    session: AsyncSession, *, email: str, purpose: Purpose, ttl: timedelta
) -> str:
    """A new token for `email`; the caller e-mails it (only its digest is kept)."""
    token = new_token()
    await MagicLinkRepository(session).add(
        MagicLink(
            email=email.lower(),
            purpose=purpose.value,
            token_hash=token_digest(token),
            expires_at=utcnow() + ttl,
        )
    )
    return token


async def redeem_email_token(session: AsyncSession, token: str, purpose: Purpose) -> str:
    """Use up `token` and answer the address it was sent to; InvalidEmailToken (codes
    `<prefix>_invalid`, `_used`, `_expired`) otherwise."""
    wording = WORDING[purpose]
    links = MagicLinkRepository(session)
    link = await links.get_by_digest(token_digest(token))
    if link is None or link.purpose != purpose.value:
        raise InvalidEmailToken(
            f"This {wording.noun} is not valid.", code=f"{wording.code}_invalid"
        )
    used = InvalidEmailToken(
        f"This {wording.noun} was already used; ask for a new one.", code=f"{wording.code}_used"
    )
    now = utcnow()
    if link.used_at is not None:
        raise used
    if link.expires_at <= now:
        raise InvalidEmailToken(
            f"This {wording.noun} has expired; ask for a new one.", code=f"{wording.code}_expired"
        )
    if not await links.consume(link.id, now):
        raise used
    return link.email
