"""`/api/v1/auth/*` and `/api/v1/me`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from saassy.accounts import magic_links, passwords, service, sessions, throttle, verification
from saassy.accounts.devices import device_cookies, remember_device
from saassy.accounts.schemas import (
    Accepted,
    AuthResponse,
    EmailVerifyRequest,
    LoginRequest,
    LogoutRequest,
    MagicLinkAccepted,
    MagicLinkRequest,
    MagicLinkVerifyRequest,
    MembershipOut,
    MeResponse,
    OrganizationBrief,
    PasswordChangeRequest,
    PasswordForgotRequest,
    PasswordResetRequest,
    RefreshRequest,
    SignupRequest,
    UserOut,
)
from saassy.auth.dependencies import CurrentUser, anonymous_rate_limit
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import ClientIP, Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.errors import Forbidden
from saassy.kit.time import utcnow
from saassy.models import User
from saassy.organizations.repository import OrganizationRepository

router = APIRouter(tags=["auth"], dependencies=[READ_OR_ADMIN])
auth = APIRouter(prefix="/auth", dependencies=[READ_OR_ADMIN, Depends(anonymous_rate_limit)])

MAGIC_LINK_ACCEPTED = MagicLinkAccepted(
    message="If this address can receive e-mail, a sign-in link is on its way."
)
RESET_ACCEPTED = Accepted(
    message="If an account uses this address, a link to reset its password is on its way."
)
VERIFICATION_SENT = Accepted(message="A new verification link is on its way.")


def _auth_response(signed_in: service.SignedIn) -> AuthResponse:
    organization = signed_in.organization
    return AuthResponse(
        access_token=signed_in.access_token,
        refresh_token=signed_in.refresh_token,
        expires_in=signed_in.expires_in,
        user=UserOut(id=signed_in.user.id, email=signed_in.user.email),
        organization=OrganizationBrief(
            id=organization.id, name=organization.name, plan=organization.plan
        ),
    )


@auth.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(
    body: SignupRequest, session: Session, settings: SettingsDep, response: Response
) -> AuthResponse:
    """Create an account and its personal organization; answers with a signed-in session."""
    user, organization = await service.register_user(
        session,
        settings,
        email=body.email,
        password=body.password,
        organization_name=body.organization,
    )
    await verification.send_verification(session, settings, user)
    remember_device(response, settings, user.email, utcnow())
    return _auth_response(await service.sign_in(session, settings, user, organization=organization))


@auth.post("/login")
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
    origin: RequestOrigin,
) -> AuthResponse:
    """Exchange an e-mail and password for an access and a refresh token (and a device cookie,
    which spares this device the account's login limit next time)."""
    now = utcnow()
    device = device_cookies(settings).recognise(body.email, request.cookies, now)
    await throttle.admit_login_attempt(limiter, settings, email=body.email, ip=ip, device=device)
    try:
        user = await service.authenticate(
            session, settings, email=body.email, password=body.password, origin=origin
        )
    except service.InvalidCredentials:
        # The failed attempt's audit entry must outlive the 401, which rolls the unit back.
        await session.commit()
        raise
    await throttle.forget_login_failures(limiter, settings, email=body.email, ip=ip, device=device)
    remember_device(response, settings, user.email, now)
    return _auth_response(await service.sign_in(session, settings, user))


@auth.post("/refresh")
async def refresh(body: RefreshRequest, session: Session, settings: SettingsDep) -> AuthResponse:
    """Trade a refresh token for a new pair; reusing a spent one revokes its whole family."""
    try:
        signed_in = await sessions.rotate_refresh_token(session, settings, body.refresh_token)
    except sessions.RefreshTokenRevoked:
        # The revocation must outlive the 401, which would otherwise roll the unit of work back.
        await session.commit()
        raise
    return _auth_response(signed_in)


@auth.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: LogoutRequest, session: Session) -> Response:
    """Revoke the refresh token's family; always 204, whether or not the token was known."""
    await sessions.end_session(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post("/magic-link", status_code=status.HTTP_202_ACCEPTED)
async def request_magic_link(
    body: MagicLinkRequest, session: Session, settings: SettingsDep, limiter: Limiter, ip: ClientIP
) -> MagicLinkAccepted:
    """E-mail a single-use sign-in link; the answer is the same for every address."""
    await throttle.admit_magic_link_request(limiter, settings, email=body.email, ip=ip)
    await magic_links.send_magic_link(session, settings, email=body.email)
    return MAGIC_LINK_ACCEPTED


@auth.post("/magic-link/verify")
async def verify_magic_link(
    body: MagicLinkVerifyRequest,
    session: Session,
    settings: SettingsDep,
    response: Response,
    origin: RequestOrigin,
) -> AuthResponse:
    """Sign in with a magic link's token (an unknown address gets an account)."""
    signed_in = await magic_links.verify_magic_link(session, settings, body.token, origin=origin)
    remember_device(response, settings, signed_in.user.email, utcnow())
    return _auth_response(signed_in)


@auth.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED)
async def forgot_password(
    body: PasswordForgotRequest,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Accepted:
    """E-mail a single-use password reset link; the answer is the same for every address."""
    await throttle.admit_email_request(
        limiter, settings, kind="password-reset", email=body.email, ip=ip
    )
    await passwords.send_password_reset(session, settings, email=body.email)
    return RESET_ACCEPTED


@auth.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    body: PasswordResetRequest, session: Session, settings: SettingsDep
) -> Response:
    """Set a new password with a reset link's token; every session of the account ends."""
    await passwords.reset_password(session, settings, token=body.token, password=body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post("/verify-email", status_code=status.HTTP_204_NO_CONTENT)
async def verify_email(body: EmailVerifyRequest, session: Session) -> Response:
    """Mark the address verified with a verification link's token."""
    await verification.verify_email(session, body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router.include_router(auth)


async def _user_of(principal: CurrentUser, session: Session) -> User:
    if principal.user_id is None:
        raise Forbidden("This needs a signed-in user, not an API key.", code="user_required")
    user = await session.get(User, principal.user_id)
    assert user is not None
    return user


@router.post("/auth/verify-email/resend", status_code=status.HTTP_202_ACCEPTED, tags=["auth"])
async def resend_verification(
    principal: CurrentUser,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Accepted:
    """E-mail the signed-in user a new verification link (nothing if already verified)."""
    user = await _user_of(principal, session)
    await throttle.admit_email_request(
        limiter, settings, kind="verify-email", email=user.email, ip=ip
    )
    await verification.send_verification(session, settings, user)
    return VERIFICATION_SENT


@router.post("/auth/password/change", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def change_password(
    body: PasswordChangeRequest, principal: CurrentUser, session: Session, settings: SettingsDep
) -> Response:
    """Change (or first set) the signed-in user's password; every other session ends."""
    user = await _user_of(principal, session)
    await passwords.change_password(
        session,
        settings,
        user,
        current=body.current_password,
        new=body.password,
        keep_session=None,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
async def me(principal: CurrentUser, session: Session) -> MeResponse:
    """The signed-in user and the organizations they belong to, with their role in each."""
    assert principal.user_id is not None
    user = await session.get(User, principal.user_id)
    assert user is not None
    found = {
        org.id: org for org in await OrganizationRepository(session).all_in_scope(principal.scope)
    }
    # In the order the user joined them, as the principal lists them.
    organizations = [found[org_id] for org_id in principal.roles if org_id in found]
    return MeResponse(
        id=user.id,
        email=user.email,
        is_staff=user.is_staff,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
        organizations=[
            MembershipOut(
                organization=OrganizationBrief(id=org.id, name=org.name, plan=org.plan),
                role=principal.roles[org.id],
            )
            for org in organizations
        ],
    )
