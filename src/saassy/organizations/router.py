"""`/api/v1/organizations` (with members and invitations) and `/api/v1/invitations/accept`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from saassy.auth.dependencies import CurrentPrincipal, CurrentUser
from saassy.auth.principal import Principal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.models import Invitation, Membership, Organization, Role
from saassy.organizations import invitations, service
from saassy.organizations.schemas import (
    AcceptedInvitation,
    InvitationAccept,
    InvitationCreate,
    InvitationOut,
    MemberOut,
    MemberUpdate,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
)

router = APIRouter(prefix="/organizations", tags=["organizations"], dependencies=[READ_OR_ADMIN])
invitations_router = APIRouter(
    prefix="/invitations", tags=["organizations"], dependencies=[READ_OR_ADMIN]
)

Pagination = Annotated[PageParams, Depends(page_params)]


def _organization_out(organization: Organization, role: Role) -> OrganizationOut:
    return OrganizationOut(
        id=organization.id,
        name=organization.name,
        plan=organization.plan,
        personal=organization.personal,
        role=role,
        created_at=organization.created_at,
    )


def _mine(principal: Principal, organization: Organization) -> OrganizationOut:
    return _organization_out(organization, service.caller_role(principal, organization.id))


def _member_out(membership: Membership, email: str) -> MemberOut:
    return MemberOut(
        id=membership.id,
        user_id=membership.user_id,
        email=email,
        role=Role(membership.role),
        joined_at=membership.created_at,
    )


def _invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=Role(invitation.role),
        invited_by_user_id=invitation.invited_by_user_id,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


@router.get("")
async def list_organizations(
    principal: CurrentPrincipal, session: Session, page: Pagination
) -> Page[OrganizationOut]:
    """The organizations the caller belongs to, with the caller's role in each."""
    rows, next_cursor = await service.list_organizations(session, principal, page)
    return Page(items=[_mine(principal, org) for org in rows], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_organization(
    body: OrganizationCreate, principal: CurrentUser, session: Session, settings: SettingsDep
) -> OrganizationOut:
    """Create an organization on the default plan; the caller becomes its owner."""
    assert principal.user_id is not None
    organization = await service.create_organization(
        session, settings, principal.user_id, body.name
    )
    return _organization_out(organization, Role.owner)


@router.get("/{organization_id}")
async def get_organization(
    organization_id: uuid.UUID, principal: CurrentPrincipal, session: Session
) -> OrganizationOut:
    """One of the caller's organizations."""
    organization = await service.get_organization(session, principal, organization_id)
    return _mine(principal, organization)


@router.patch("/{organization_id}")
async def update_organization(
    organization_id: uuid.UUID,
    body: OrganizationUpdate,
    principal: CurrentPrincipal,
    session: Session,
) -> OrganizationOut:
    """Rename an organization (admin or owner)."""
    organization = await service.rename_organization(session, principal, organization_id, body.name)
    return _mine(principal, organization)


@router.delete("/{organization_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_organization(
    organization_id: uuid.UUID, principal: CurrentPrincipal, session: Session
) -> Response:
    """Delete an organization (owner only); its API keys stop working at once."""
    await service.delete_organization(session, principal, organization_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{organization_id}/members")
async def list_members(
    organization_id: uuid.UUID, principal: CurrentPrincipal, session: Session, page: Pagination
) -> Page[MemberOut]:
    """The organization's members and their roles, in the order they joined."""
    rows, next_cursor = await service.list_members(session, principal, organization_id, page)
    return Page(items=[_member_out(m, email) for m, email in rows], next_cursor=next_cursor)


@router.patch("/{organization_id}/members/{user_id}")
async def update_member(
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    body: MemberUpdate,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
) -> MemberOut:
    """Change a member's role (admin+; only an owner grants or takes away ownership)."""
    membership, email = await service.change_member_role(
        session, principal, organization_id, user_id, body.role, origin=origin
    )
    return _member_out(membership, email)


@router.delete("/{organization_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
) -> Response:
    """Remove a member (admin+), or leave the organization with your own user id."""
    await service.remove_member(session, principal, organization_id, user_id, origin=origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{organization_id}/invitations", status_code=status.HTTP_201_CREATED)
async def create_invitation(
    organization_id: uuid.UUID,
    body: InvitationCreate,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    origin: RequestOrigin,
) -> InvitationOut:
    """Invite someone by e-mail (admin+, up to your own role); the link is sent, not returned.
    Inviting an address again sends a new link; invitation e-mails are rate limited per address
    and per organization (429)."""
    invitation = await invitations.invite(
        session,
        settings,
        limiter,
        principal,
        organization_id,
        email=body.email,
        role=body.role,
        origin=origin,
    )
    return _invitation_out(invitation)


@router.get("/{organization_id}/invitations")
async def list_invitations(
    organization_id: uuid.UUID, principal: CurrentPrincipal, session: Session, page: Pagination
) -> Page[InvitationOut]:
    """Pending invitations (admin+)."""
    rows, next_cursor = await invitations.list_pending(session, principal, organization_id, page)
    return Page(items=[_invitation_out(i) for i in rows], next_cursor=next_cursor)


@router.delete(
    "/{organization_id}/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def revoke_invitation(
    organization_id: uuid.UUID,
    invitation_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: Session,
) -> Response:
    """Revoke a pending invitation (admin+); its link stops working."""
    await invitations.revoke(session, principal, organization_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@invitations_router.post("/accept")
async def accept_invitation(
    body: InvitationAccept, principal: CurrentUser, session: Session
) -> AcceptedInvitation:
    """Join an organization with the token from an invitation e-mail sent to your address."""
    organization, role = await invitations.accept(session, principal, body.token)
    return AcceptedInvitation(organization=_organization_out(organization, role), role=role)
