"""Invitations: an admin invites an e-mail address; its owner signs in and accepts the link.

Every invitation e-mail (an invite or a resend, from the API or the dashboard) is counted against
two limits per invited address, across all organizations, so nobody can flood an inbox from many
organizations, and one per organization, which bounds the mail one organization sends. The
organization's limit is looked at first and counted last, so a refused address does not use it
up. Over a limit, the answer is 429 with Retry-After, and nothing changes (the pending
invitation stays as it was).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import UserRepository
from saassy.accounts.verification import require_verified_email
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.access_cache import AccessChanged
from saassy.auth.principal import Principal
from saassy.config import Environment, Settings
from saassy.email.outbox import queue_email
from saassy.kit.after_commit import after_commit
from saassy.kit.email_address import refuse_reserved_domain
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.ratelimit import RateLimiter
from saassy.kit.security import new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import Invitation, Membership, Organization, Role
from saassy.organizations.errors import (
    AlreadyMember,
    InvitationEmailMismatch,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    RoleTooHigh,
    UnknownInvitationToken,
)
from saassy.organizations.repository import (
    InvitationRepository,
    MembershipRepository,
    OrganizationRepository,
)
from saassy.organizations.service import get_organization, require_role

TOO_MANY_FOR_ADDRESS = "Too many invitations were sent to this address; try again later."
TOO_MANY_FOR_ORGANIZATION = "This organization has sent too many invitations; try again later."


async def admit_invitation_email(
    limiter: RateLimiter, settings: Settings, *, organization_id: uuid.UUID, email: str
) -> None:
    """Count one invitation e-mail to `email` from the organization, or raise RateLimited."""
    organization = str(organization_id)
    await limiter.check(
        settings.invitation_limit_per_organization,
        "invitation-organization",
        organization,
        message=TOO_MANY_FOR_ORGANIZATION,
    )
    email = email.lower()
    await limiter.hit(
        settings.invitation_limit_per_email, "invitation-email", email, message=TOO_MANY_FOR_ADDRESS
    )
    await limiter.hit(
        settings.invitation_limit_per_email_daily,
        "invitation-email-day",
        email,
        message=TOO_MANY_FOR_ADDRESS,
    )
    await limiter.hit(
        settings.invitation_limit_per_organization,
        "invitation-organization",
        organization,
        message=TOO_MANY_FOR_ORGANIZATION,
    )


async def invite(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    principal: Principal,
    organization_id: uuid.UUID,
    *,
    email: str,
    role: Role,
    origin: Origin,
) -> Invitation:
    """Invite an address (admin+, up to the inviter's own role) and e-mail it a one-time link."""
    # Locked, so two invitations of one address at once cannot both stay pending.
    organization = await get_organization(session, principal, organization_id, lock=True)
    inviter_role = require_role(principal, organization.id, Role.admin)
    if role.rank > inviter_role.rank:
        raise RoleTooHigh(f"You cannot invite someone as {role.value}.", field="role")
    email = email.lower()
    refuse_reserved_domain(email, production=settings.env is Environment.production)
    if await MembershipRepository(session).has_member_with_email(organization.id, email):
        raise AlreadyMember("This person is already a member.", field="email")
    # After the checks on what was typed, so the form shows those first.
    await require_verified_email(session, principal.user_id)
    # Before anything is written: a refused invitation leaves the pending one as it was.
    await admit_invitation_email(limiter, settings, organization_id=organization.id, email=email)
    invitations = InvitationRepository(session)
    now = utcnow()
    # Inviting an address again replaces its pending invitation: only the newest link works.
    for earlier in await invitations.pending_for_email(organization.id, email, now):
        earlier.revoked_at = now
    token = new_token()
    invitation = await invitations.add(
        Invitation(
            organization_id=organization.id,
            email=email,
            role=role,
            token_hash=token_digest(token),
            invited_by_user_id=principal.user_id,
            expires_at=now + settings.invitation_ttl,
        )
    )
    await _send_invitation(session, settings, principal, organization, invitation, token)
    # The invitation's id, not the address: the invitee may never become a user to pseudonymize.
    await record(
        session,
        AuditAction.member_invited,
        Actor.of(principal, origin),
        organization_id=organization.id,
        target=Target(TargetType.invitation, invitation.id),
        details={"role": role.value},
    )
    return invitation


async def _send_invitation(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: Organization,
    invitation: Invitation,
    token: str,
) -> None:
    inviter = await UserRepository(session).get(principal.user_id) if principal.user_id else None
    product = settings.catalog.branding.name
    who = inviter.email if inviter is not None else "An administrator"
    link = f"{settings.base_url.rstrip('/')}/invitations/accept?token={token}"
    body = (
        f"{who} invited you to join {organization.name} on {product} as {invitation.role}.\n\n"
        f"Accept the invitation (sign in or sign up with {invitation.email} first):\n"
        f"{link}\n\n"
        f"Or, from the API, POST /api/v1/invitations/accept with this token:\n{token}\n\n"
        f"The invitation expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not expect it, ignore this e-mail.\n"
    )
    await queue_email(
        session,
        settings,
        to=invitation.email,
        subject=f"Join {organization.name} on {product}",
        body=body,
    )


async def list_pending(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, params: PageParams
) -> tuple[list[Invitation], str | None]:
    """Invitations not yet accepted, revoked or expired (admin+)."""
    organization = await get_organization(session, principal, organization_id)
    require_role(principal, organization.id, Role.admin)
    rows = await InvitationRepository(session).list_pending(
        organization.id, principal.scope, utcnow(), params
    )
    return page_of(rows, params, lambda invitation: (invitation.created_at, invitation.id))


async def revoke(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    invitation_id: uuid.UUID,
) -> None:
    """Revoke an invitation (admin+); revoking twice is harmless, an accepted one is a 409."""
    organization = await get_organization(session, principal, organization_id)
    invitation = await InvitationRepository(session).get_in_organization(
        invitation_id, organization.id, principal.scope
    )
    if invitation is None:
        raise InvitationNotFound()
    require_role(principal, organization.id, Role.admin)
    if invitation.accepted_at is not None:
        raise InvitationUsed("This invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        await session.flush()


async def accept(
    session: AsyncSession, principal: Principal, token: str
) -> tuple[Organization, Role]:
    """Join the organization an invitation names, as the signed-in user it was sent to."""
    assert principal.user_id is not None
    invitation = await InvitationRepository(session).get_by_digest_for_update(token_digest(token))
    if invitation is None:
        raise UnknownInvitationToken()
    user = await UserRepository(session).get(principal.user_id)
    assert user is not None
    if user.email.lower() != invitation.email.lower():
        raise InvitationEmailMismatch(
            "This invitation was sent to another e-mail address; sign in with that address.",
            field="token",
        )
    now = utcnow()
    if (refused := _refusal(invitation, now)) is not None:
        raise refused
    organization = await OrganizationRepository(session).get_live(
        invitation.organization_id, lock=True
    )
    if organization is None:
        raise UnknownInvitationToken()
    memberships = MembershipRepository(session)
    if await memberships.has_member_with_email(organization.id, user.email):
        raise AlreadyMember("You are already a member of this organization.")
    role = Role(invitation.role)
    await memberships.add(Membership(organization_id=organization.id, user_id=user.id, role=role))
    after_commit(session, AccessChanged())
    invitation.accepted_at = now
    await session.flush()
    return organization, role


def _refusal(invitation: Invitation, now: datetime) -> SaassyError | None:
    """Why the invitation can no longer be accepted, if it cannot."""
    if invitation.revoked_at is not None:
        return InvitationRevoked("This invitation was revoked.", field="token")
    if invitation.accepted_at is not None:
        return InvitationUsed("This invitation was already accepted.", field="token")
    if invitation.expires_at <= now:
        return InvitationExpired("This invitation has expired; ask for a new one.", field="token")
    return None


@dataclass(frozen=True)
class InvitationPreview:
    organization: Organization
    role: Role


async def preview(session: AsyncSession, token: str, email: str | None) -> InvitationPreview:
    """What an invitation link offers, without using it; raises what accepting it would now
    (`email`: the signed-in user's address, None when nobody is signed in)."""
    invitation = await InvitationRepository(session).get_by_digest(token_digest(token))
    if invitation is None:
        raise UnknownInvitationToken()
    organization = await OrganizationRepository(session).get_live(invitation.organization_id)
    if organization is None:
        raise UnknownInvitationToken()
    if email is not None and email.lower() != invitation.email.lower():
        raise InvitationEmailMismatch(
            "This invitation was sent to another e-mail address; sign in with that address.",
            field="token",
        )
    if (refused := _refusal(invitation, utcnow())) is not None:
        raise refused
    if email is not None and await MembershipRepository(session).has_member_with_email(
        organization.id, email
    ):
        raise AlreadyMember("You are already a member of this organization.")
    return InvitationPreview(organization, Role(invitation.role))


async def resend(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    principal: Principal,
    organization_id: uuid.UUID,
    invitation_id: uuid.UUID,
    *,
    origin: Origin,
) -> Invitation:
    """Send an invitation again (admin+): a new link replaces the old one, with a new expiry."""
    organization = await get_organization(session, principal, organization_id)
    earlier = await InvitationRepository(session).get_in_organization(
        invitation_id, organization.id, principal.scope
    )
    if earlier is None:
        raise InvitationNotFound()
    require_role(principal, organization.id, Role.admin)
    if earlier.accepted_at is not None:
        raise InvitationUsed("This invitation was already accepted.")
    return await invite(
        session,
        settings,
        limiter,
        principal,
        organization.id,
        email=earlier.email,
        role=Role(earlier.role),
        origin=origin,
    )
