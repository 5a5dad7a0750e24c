"""Accounts: sign-up, password login and the signed-in session a client is handed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import UserRepository
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, email_hash, record
from saassy.config import Environment, Settings
from saassy.kit.email_address import refuse_reserved_domain
from saassy.kit.errors import Conflict, Unauthorized
from saassy.kit.security import issue_access_token, new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import Membership, Organization, RefreshToken, Role, User
from saassy.organizations.repository import MembershipRepository


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class NoOrganization(Unauthorized):
    code = "no_organization"


@dataclass(frozen=True)
class SignedIn:
    """What a client receives after login, refresh or a magic link."""

    user: User
    organization: Organization
    access_token: str
    refresh_token: str
    expires_in: int


async def register_user(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str | None,
    organization_name: str | None = None,
    is_staff: bool = False,
) -> tuple[User, Organization]:
    """Create a user with a personal organization on the default plan, owned by them."""
    users = UserRepository(session)
    email = email.lower()
    refuse_reserved_domain(email, production=settings.env is Environment.production)
    if await users.get_by_email(email) is not None:
        raise EmailTaken("An account with this e-mail already exists.", field="email")
    password_hash = await settings.password_hasher.hash(password) if password is not None else None
    try:
        # A savepoint, so a concurrent sign-up with the same e-mail is a 409, not a broken session.
        async with session.begin_nested():
            user = await users.add(
                User(email=email, password_hash=password_hash, is_staff=is_staff)
            )
    except IntegrityError as exc:
        raise EmailTaken("An account with this e-mail already exists.", field="email") from exc
    organization = Organization(
        name=organization_name or f"{email.split('@')[0]}'s organization",
        personal=True,
        plan=settings.catalog.default_plan,
        plan_overrides={},
    )
    session.add(organization)
    await session.flush()
    session.add(Membership(organization_id=organization.id, user_id=user.id, role=Role.owner))
    await session.flush()
    return user, organization


async def authenticate(
    session: AsyncSession, settings: Settings, *, email: str, password: str, origin: Origin
) -> User:
    """The user with this e-mail and password; unknown e-mail and wrong password look the same.

    Either way the attempt is audited; a failure's entry is in the session when
    InvalidCredentials is raised, and the caller commits it before answering."""
    user = await UserRepository(session).get_by_email(email)
    valid, new_hash = await settings.password_hasher.verify(
        password, user.password_hash if user else None
    )
    if user is None or not valid or user.disabled_at is not None:
        await record(
            session,
            AuditAction.sign_in_failed,
            Actor.nobody(origin),
            target=Target(TargetType.user, user.id) if user is not None else None,
            details={"method": "password"},
            hashed_email=email_hash(settings.signing_secret, email),
        )
        raise InvalidCredentials("Wrong e-mail or password.")
    if new_hash is not None:
        user.password_hash = new_hash
    user.last_login_at = utcnow()
    await record(
        session,
        AuditAction.signed_in,
        Actor.user(user.id, origin),
        target=Target(TargetType.user, user.id),
        details={"method": "password"},
    )
    return user


async def primary_organization(session: AsyncSession, user_id: uuid.UUID) -> Organization:
    """The organization a fresh session starts in: the personal one, else the oldest."""
    memberships = await MembershipRepository(session).roles_of_user(user_id)
    if not memberships:
        raise NoOrganization("This account belongs to no organization.")
    org_id = next((o for o, _, _, personal in memberships if personal), memberships[0][0])
    organization = await session.get(Organization, org_id)
    if organization is None:
        raise NoOrganization("This account belongs to no organization.")
    return organization


async def issue_session_tokens(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    family_id: uuid.UUID | None = None,
) -> tuple[str, str, int]:
    """(access token, refresh token, seconds to expiry); the refresh token joins `family_id`."""
    access_token, _ = issue_access_token(
        user_id, settings.signing_secret, settings.access_token_ttl
    )
    refresh_token = new_token()
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=token_digest(refresh_token),
            expires_at=utcnow() + settings.refresh_token_ttl,
        )
    )
    await session.flush()
    return access_token, refresh_token, int(settings.access_token_ttl / timedelta(seconds=1))


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    family_id: uuid.UUID | None = None,
    organization: Organization | None = None,
) -> SignedIn:
    """Hand out a token pair (a new refresh family unless `family_id` continues one)."""
    organization = organization or await primary_organization(session, user.id)
    access, refresh, expires_in = await issue_session_tokens(
        session, settings, user.id, family_id=family_id
    )
    return SignedIn(user, organization, access, refresh, expires_in)
