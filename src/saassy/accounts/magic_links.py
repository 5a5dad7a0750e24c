"""Passwordless sign-in: a single-use, expiring link sent by e-mail and stored only hashed.

Every address gets the same treatment, known or not, so the answer tells nothing about who has
an account; an unknown address that follows its link signs up on the spot.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import MagicLinkRepository, UserRepository
from saassy.accounts.service import SignedIn, register_user, sign_in
from saassy.config import Environment, Settings
from saassy.email.outbox import queue_email
from saassy.kit.email_address import refuse_reserved_domain
from saassy.kit.errors import Unauthorized
from saassy.kit.security import new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import MagicLink


class InvalidMagicLink(Unauthorized):
    code = "magic_link_invalid"


class MagicLinkUsed(InvalidMagicLink):
    code = "magic_link_used"


class MagicLinkExpired(InvalidMagicLink):
    code = "magic_link_expired"


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
    token = new_token()
    await MagicLinkRepository(session).add(
        MagicLink(
            email=email,
            token_hash=token_digest(token),
            expires_at=utcnow() + settings.magic_link_ttl,
        )
    )
    subject, body = _message(settings, token)
    await queue_email(session, settings, to=email, subject=subject, body=body)


async def verify_magic_link(session: AsyncSession, settings: Settings, token: str) -> SignedIn:
    """Use up the link and sign its address in, creating the account on first use."""
    links = MagicLinkRepository(session)
    link = await links.get_by_digest(token_digest(token))
    if link is None:
        raise InvalidMagicLink("This sign-in link is not valid.")
    now = utcnow()
    if link.used_at is not None:
        raise MagicLinkUsed("This sign-in link was already used; ask for a new one.")
    if link.expires_at <= now:
        raise MagicLinkExpired("This sign-in link has expired; ask for a new one.")
    if not await links.consume(link.id, now):
        raise MagicLinkUsed("This sign-in link was already used; ask for a new one.")

    user = await UserRepository(session).get_by_email(link.email)
    organization = None
    if user is None:
        user, organization = await register_user(session, settings, email=link.email, password=None)
    elif user.disabled_at is not None:
        raise InvalidMagicLink("This sign-in link is not valid.")
    # Following the link proves the address is theirs.
    user.email_verified_at = user.email_verified_at or now
    user.last_login_at = now
    return await sign_in(session, settings, user, organization=organization)
