"""Forgotten and changed passwords.

A reset link is e-mailed to whoever asks, account or not, and the answer is the same either
way. Setting a new password (by reset or by change) ends the user's other sessions: every API
refresh-token family and every dashboard session, except the one that made the change.

A reset of an account whose address was never verified is also the first proof that the owner of
the address holds it (see `claim_unverified`): the password chosen at sign-up, perhaps by someone
else, is replaced and every session ends, as for any reset.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.browser_sessions import end_user_browser_sessions
from saassy.accounts.email_tokens import (
    InvalidEmailToken,
    Purpose,
    issue_email_token,
    redeem_email_token,
)
from saassy.accounts.repository import RefreshTokenRepository, UserRepository
from saassy.config import Environment, Settings
from saassy.email.outbox import queue_email
from saassy.kit.email_address import refuse_reserved_domain
from saassy.kit.errors import Forbidden
from saassy.kit.time import utcnow
from saassy.models import User


class WrongPassword(Forbidden):
    code = "wrong_password"


def reset_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/reset-password?{urlencode({'token': token})}"


def _message(settings: Settings, token: str) -> tuple[str, str]:
    name = settings.catalog.branding.name
    minutes = max(1, int(settings.password_reset_ttl / timedelta(minutes=1)))
    body = (
        f"Hello,\n\n"
        f"Someone asked to reset the password of your {name} account. Follow this link to "
        f"choose a new one:\n\n"
        f"    {reset_url(settings, token)}\n\n"
        f"The link works once and expires in {minutes} minutes. Choosing a new password signs "
        f"you out everywhere else. If you did not ask for it, ignore this e-mail: your password "
        f"stays as it is.\n"
    )
    return f"Reset your {name} password", body


async def send_password_reset(session: AsyncSession, settings: Settings, *, email: str) -> None:
    """E-mail a reset link if `email` has a live account; nothing else happens otherwise."""
    email = email.lower()
    refuse_reserved_domain(email, production=settings.env is Environment.production)
    user = await UserRepository(session).get_by_email(email)
    if user is None or user.disabled_at is not None:
        return
    token = await issue_email_token(
        session, email=email, purpose=Purpose.reset_password, ttl=settings.password_reset_ttl
    )
    subject, body = _message(settings, token)
    await queue_email(session, settings, to=email, subject=subject, body=body)


async def end_other_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> None:
    """Log the user out of every API session and every browser session but `keep`."""
    await RefreshTokenRepository(session).revoke_user_families(user_id, utcnow())
    await end_user_browser_sessions(session, user_id, keep=keep)


async def claim_unverified(session: AsyncSession, user: User) -> None:
    """A sign-in link, e-mailed to the address, was followed for an account whose address was
    never verified: the first proof that the address's owner holds the account. Whoever signed
    up with it may have been someone else (account pre-hijacking), so end every session of the
    account and drop the password chosen at sign-up; the owner signs in by link and may set a
    password on their account page. Nothing happens to a verified account."""
    if user.email_verified_at is not None:
        return
    await end_other_sessions(session, user.id)
    user.password_hash = None
    user.email_verified_at = utcnow()


async def reset_password(
    session: AsyncSession, settings: Settings, *, token: str, password: str
) -> User:
    """Use up a reset link, set the new password and end every session of its user."""
    email = await redeem_email_token(session, token, Purpose.reset_password)
    user = await UserRepository(session).get_by_email(email)
    if user is None or user.disabled_at is not None:
        raise InvalidEmailToken(
            "This password reset link is not valid.", code="password_reset_invalid"
        )
    # The link reached the address: it is theirs. The new password replaces the one chosen at
    # sign-up, and every session ends: on a never-verified account, that shuts out whoever
    # signed up with the address if it was not its owner.
    user.password_hash = await settings.password_hasher.hash(password)
    user.email_verified_at = user.email_verified_at or utcnow()
    await end_other_sessions(session, user.id)
    return user


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    current: str | None,
    new: str,
    keep_session: uuid.UUID | None,
) -> None:
    """Set a new password (checking the current one, if the account has one) and end the
    user's other sessions."""
    if user.password_hash is not None:
        valid, _ = await settings.password_hasher.verify(current or "", user.password_hash)
        if not valid:
            raise WrongPassword("The current password is not right.", field="current_password")
    user.password_hash = await settings.password_hasher.hash(new)
    await end_other_sessions(session, user.id, keep=keep_session)
