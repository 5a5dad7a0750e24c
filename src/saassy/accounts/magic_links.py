"""Passwordless sign-in: a single-use, expiring link sent by e-mail and stored only hashed.

Every address gets the same treatment, known or not, so the answer tells nothing about who has
an account; an unknown address that follows its link signs up on the spot.

A link followed for an account whose address was never verified is the first proof that the
address's owner holds it: whoever signed up with it (and a password) may have been someone else,
so that account's sessions end and its password is dropped (see `claim_unverified`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.email_tokens import (
    InvalidEmailToken,
    Purpose,
    issue_email_token,
    redeem_email_token,
)
from saassy.accounts.passwords import claim_unverified
from saassy.accounts.repository import UserRepository
from saassy.accounts.service import SignedIn, register_user, sign_in
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.config import Environment, Settings
from saassy.email.outbox import queue_email
from saassy.kit.email_address import refuse_reserved_domain
from saassy.kit.time import utcnow
from saassy.models import Organization, User


class InvalidMagicLink(InvalidEmailToken):
    code = "magic_link_invalid"


@dataclass(frozen=True)
class Redeemed:
    """Whom a followed link signs in, and the organization made for them if it signed them up."""

    user: User
    new_organization: Organization | None


def magic_link_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/login/magic?{urlencode({'token': token})}"


def _message(settings: Settings, token: str) -> tuple[str, str]:
    name = settings.catalog.branding.name
    minutes = max(1, int(settings.magic_link_ttl / timedelta(minutes=1)))
    body = (
        f"Hello,\n\n"
        f"Follow this link to sign in to {name}:\n\n"
        f"    {magic_link_url(settings, token)}\n\n"
        f"Or paste this code where you asked for the link: {token}\n\n"
        f"The link works once and expires in {minutes} minutes. If you did not ask for it, "
        f"ignore this e-mail: nobody can sign in without it.\n"
    )
    return f"Your sign-in link for {name}", body


async def send_magic_link(session: AsyncSession, settings: Settings, *, email: str) -> None:
    """Create a link for `email` and queue the e-mail that carries it."""
    email = email.lower()
    refuse_reserved_domain(email, production=settings.env is Environment.production)
    user = await UserRepository(session).get_by_email(email)
    if user is not None and user.disabled_at is not None:
        return
    token = await issue_email_token(
        session, email=email, purpose=Purpose.sign_in, ttl=settings.magic_link_ttl
    )
    subject, body = _message(settings, token)
    await queue_email(session, settings, to=email, subject=subject, body=body)


async def redeem_magic_link(
    session: AsyncSession, settings: Settings, token: str, *, origin: Origin
) -> Redeemed:
    """Use up the link and answer whom it signs in, creating the account on first use; no
    credentials are minted here (the API hands out tokens, the dashboard a session)."""
    email = await redeem_email_token(session, token, Purpose.sign_in)
    user = await UserRepository(session).get_by_email(email)
    organization = None
    if user is None:
        user, organization = await register_user(session, settings, email=email, password=None)
    elif user.disabled_at is not None:
        raise InvalidMagicLink("This sign-in link is not valid.")
    else:
        # On a never-verified account, the first proof that the address is theirs: shut out
        # whoever signed up with it.
        await claim_unverified(session, user)
    now = utcnow()
    # Following the link proves the address is theirs.
    user.email_verified_at = user.email_verified_at or now
    user.last_login_at = now
    await record(
        session,
        AuditAction.signed_in,
        Actor.user(user.id, origin),
        target=Target(TargetType.user, user.id),
        details={"method": "magic_link"},
    )
    return Redeemed(user, organization)


async def verify_magic_link(
    session: AsyncSession, settings: Settings, token: str, *, origin: Origin
) -> SignedIn:
    """Use up the link and sign its address in with API tokens."""
    redeemed = await redeem_magic_link(session, settings, token, origin=origin)
    return await sign_in(session, settings, redeemed.user, organization=redeemed.new_organization)
