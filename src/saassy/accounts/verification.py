"""E-mail verification for accounts that signed up with a password.

Following the verification link confirms the sign-up as it is: in the usual case the person who
follows it is the one who signed up, often in the browser they signed up in, so their password
and sessions stay. (A sign-in link or a password reset for a never-verified account, on the
contrary, shuts out whoever signed up: see passwords.claim_unverified.) The e-mail tells someone
who did not sign up not to follow it and to ask for a sign-in link instead.

An unverified account may do everything but the two things that reach beyond it with the
address's authority: inviting people (the invitation e-mail goes out in the account's name) and
creating API keys (long-lived credentials that outlive a mistyped or borrowed address). Both
answer 403 `email_unverified` until the address is verified.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.email_tokens import (
    InvalidEmailToken,
    Purpose,
    issue_email_token,
    redeem_email_token,
)
from saassy.accounts.repository import UserRepository
from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.kit.errors import Forbidden
from saassy.kit.time import utcnow
from saassy.models import User


class EmailUnverified(Forbidden):
    code = "email_unverified"


def verify_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/verify-email?{urlencode({'token': token})}"


def _message(settings: Settings, token: str) -> tuple[str, str]:
    name = settings.catalog.branding.name
    days = max(1, int(settings.email_verification_ttl / timedelta(days=1)))
    body = (
        f"Hello,\n\n"
        f"Follow this link to confirm that this is the address of your {name} account:\n\n"
        f"    {verify_url(settings, token)}\n\n"
        f"The link works once and expires in {days} day{'s' if days != 1 else ''}. Following "
        f"it confirms the account as it was signed up, with its password.\n\n"
        f"If you did not sign up, do not follow it: someone else may have used your address. "
        f"Ask for a sign-in link at {settings.base_url.rstrip('/')}/login/magic instead; "
        f"following that link makes the account yours and locks out whoever signed up.\n"
    )
    return f"Confirm your e-mail address for {name}", body


async def send_verification(session: AsyncSession, settings: Settings, user: User) -> None:
    """Queue the e-mail with a verification link (nothing if the address is verified)."""
    if user.email_verified_at is not None:
        return
    token = await issue_email_token(
        session,
        email=user.email,
        purpose=Purpose.verify_email,
        ttl=settings.email_verification_ttl,
    )
    subject, body = _message(settings, token)
    await queue_email(session, settings, to=user.email, subject=subject, body=body)


async def verify_email(session: AsyncSession, token: str) -> User:
    """Use up a verification link and mark its address verified."""
    email = await redeem_email_token(session, token, Purpose.verify_email)
    user = await UserRepository(session).get_by_email(email)
    if user is None or user.disabled_at is not None:
        raise InvalidEmailToken(
            "This verification link is not valid.", code="email_verification_invalid"
        )
    user.email_verified_at = user.email_verified_at or utcnow()
    return user


async def require_verified_email(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    """Refuse with `email_unverified` unless the user's address is verified (an API key, which
    has no user, is refused by its own rules before this)."""
    if user_id is None:
        return
    user = await UserRepository(session).get(user_id)
    if user is not None and user.email_verified_at is None:
        raise EmailUnverified(
            "Verify your e-mail address first: follow the link we sent you, or ask for a new "
            "one on your account page.",
        )
