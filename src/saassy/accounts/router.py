"""`/api/v1/auth/*` and `/api/v1/me`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from saassy.accounts import service
from saassy.accounts.schemas import (
    AuthResponse,
    LoginRequest,
    MembershipOut,
    MeResponse,
    OrganizationBrief,
    SignupRequest,
    UserOut,
)
from saassy.auth.dependencies import CurrentUser, anonymous_rate_limit
from saassy.kit.deps import Session, SettingsDep
from saassy.kit.errors import Unauthorized
from saassy.models import Organization, User
from saassy.organizations.repository import MembershipRepository

router = APIRouter(tags=["auth"])
auth = APIRouter(prefix="/auth", dependencies=[Depends(anonymous_rate_limit)])


async def _auth_response(
    session: Session, settings: SettingsDep, user: User, organization: Organization
) -> AuthResponse:
    access, refresh, expires_in = await service.issue_session_tokens(session, settings, user.id)
    return AuthResponse(
        access_token=access,
        refresh_token=refresh,
        expires_in=expires_in,
        user=UserOut(id=user.id, email=user.email),
        organization=OrganizationBrief(
            id=organization.id, name=organization.name, plan=organization.plan
        ),
    )


@auth.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(body: SignupRequest, session: Session, settings: SettingsDep) -> AuthResponse:
    """Create an account and its personal organization; answers with a signed-in session."""
    user, organization = await service.register_user(
        session,
        settings,
        email=body.email,
        password=body.password,
        organization_name=body.organization,
    )
    return await _auth_response(session, settings, user, organization)


@auth.post("/login")
async def login(body: LoginRequest, session: Session, settings: SettingsDep) -> AuthResponse:
    """Exchange an e-mail and password for an access and a refresh token."""
    user = await service.authenticate(session, settings, email=body.email, password=body.password)
    memberships = await MembershipRepository(session).roles_of_user(user.id)
    if not memberships:
        raise Unauthorized("This account belongs to no organization.", code="no_organization")
    org_id = next((o for o, _, _, personal in memberships if personal), memberships[0][0])
    organization = await session.get(Organization, org_id)
    assert organization is not None
    return await _auth_response(session, settings, user, organization)


router.include_router(auth)


@router.get("/me")
async def me(principal: CurrentUser, session: Session) -> MeResponse:
    """The signed-in user and the organizations they belong to, with their role in each."""
    assert principal.user_id is not None
    user = await session.get(User, principal.user_id)
    assert user is not None
    organizations = {
        org.id: org
        for org in [await session.get(Organization, org_id) for org_id in principal.roles]
        if org is not None
    }
    return MeResponse(
        id=user.id,
        email=user.email,
        is_staff=user.is_staff,
        created_at=user.created_at,
        organizations=[
            MembershipOut(
                organization=OrganizationBrief(id=org.id, name=org.name, plan=org.plan),
                role=principal.roles[org.id],
            )
            for org in organizations.values()
        ],
    )
