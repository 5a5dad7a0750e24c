"""The signed-in user's own account: profile, password, e-mail verification and the browser
sessions signed in to it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts import passwords, throttle, verification
from saassy.accounts.browser_sessions import end_own_browser_session, user_browser_sessions
from saassy.accounts.router import VERIFICATION_SENT
from saassy.accounts.schemas import PasswordChangeRequest
from saassy.accounts.user_agents import describe_user_agent
from saassy.deps import ClientIP, Limiter, Session, SettingsDep, app_context
from saassy.kit.errors import NotFound, SaassyError
from saassy.models import Organization
from saassy.privacy import erasure
from saassy.privacy.exports import recent_exports
from saassy.web.caller import Caller
from saassy.web.cookies import SESSION_COOKIE, clear_cookie
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form
from saassy.web.pages.auth import MIN_PASSWORD
from saassy.web.templating import redirect, render

router = APIRouter(prefix="/account")
# Outside /app: shown once the account is gone, to a browser no longer signed in.
public_router = APIRouter()


async def _account_page(
    request: Request,
    caller: Caller,
    session: Session,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    records = await user_browser_sessions(session, caller.user.id)
    settings = app_context(request).settings
    plan = await erasure.plan_deletion(session, caller.user.id)

    async def names(ids: list[uuid.UUID]) -> list[str]:
        found = [await session.get(Organization, org_id) for org_id in ids]
        return [org.name for org in found if org is not None]

    return render(
        request,
        "app/account/index.html",
        {
            "user": caller.user,
            "has_password": caller.user.password_hash is not None,
            "sessions": [
                {
                    "record": record,
                    "device": describe_user_agent(record.user_agent),
                    "current": record.id == caller.browser_session.id,
                }
                for record in records
            ],
            "errors": errors or {},
            "min_password": MIN_PASSWORD,
            "exports": await recent_exports(session, caller.user.id),
            "export_expiry_days": settings.export_expiry_days,
            "deletion": {
                "deleted": await names(plan.deleted_organizations),
                "left": await names(plan.left_organizations),
                "blocking": await names(plan.blocking_organizations),
            },
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
async def account(request: Request, caller: Caller, session: Session) -> Response:
    return await _account_page(request, caller, session)


@router.post("/password", response_class=HTMLResponse)
async def change_password(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    values = await form_data(request)
    had_password = caller.user.password_hash is not None
    try:
        body = parse_form(
            PasswordChangeRequest,
            {
                "current_password": values.get("current_password") or None,
                "password": values.get("password", ""),
            },
        )
        await passwords.change_password(
            session,
            settings,
            caller.user,
            current=body.current_password,
            new=body.password,
            keep_session=caller.browser_session.id,
        )
    except FormInvalid as exc:
        return await _account_page(request, caller, session, exc.errors, status_code=422)
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return await _account_page(
            request, caller, session, error_of(exc), status_code=exc.status_code
        )
    done = "Password changed" if had_password else "Password set"
    return redirect(request, "/app/account", message=f"{done}; your other sessions are logged out.")


@router.post("/verify-email/resend")
async def resend_verification(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Response:
    if caller.user.email_verified_at is not None:
        return redirect(request, "/app/account", message="Your address is already verified.")
    await throttle.admit_email_request(
        limiter, settings, kind="verify-email", email=caller.user.email, ip=ip
    )
    await verification.send_verification(session, settings, caller.user)
    return redirect(request, "/app/account", message=VERIFICATION_SENT.message)


@router.post("/sessions/{session_id}/logout")
async def log_out_session(
    request: Request, session_id: uuid.UUID, caller: Caller, session: Session
) -> Response:
    if session_id == caller.browser_session.id:
        # This browser: the ordinary log-out, which also clears the cookie.
        return redirect(request, "/app/account", message="Use Log out to end this session.")
    if not await end_own_browser_session(session, caller.user.id, session_id):
        raise NotFound("Session")  # another user's, or already ended
    return redirect(request, "/app/account", message="That session is logged out.")


@router.post("/sessions/logout-others")
async def log_out_everywhere_else(request: Request, caller: Caller, session: Session) -> Response:
    await passwords.end_other_sessions(session, caller.user.id, keep=caller.browser_session.id)
    return redirect(
        request,
        "/app/account",
        message="Every other browser session and API sign-in is logged out.",
    )


@router.post("/delete/code")
async def send_deletion_code(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Response:
    if caller.user.password_hash is not None:
        return redirect(request, "/app/account", message="Confirm with your password instead.")
    await throttle.admit_email_request(
        limiter, settings, kind="delete-account", email=caller.user.email, ip=ip
    )
    await erasure.send_deletion_code(session, settings, caller.user)
    return redirect(
        request, "/app/account#delete", message="A confirmation code is on its way to your address."
    )


@router.post("/delete", response_class=HTMLResponse)
async def delete_account(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Response:
    values = await form_data(request)
    if values.get("delete_password"):
        # A password tried here is a guess like one at the login: the same limits count it.
        await throttle.admit_login_attempt(
            limiter, settings, email=caller.user.email, ip=ip, device=None
        )
    try:
        await erasure.request_account_deletion(
            session,
            settings,
            caller.user,
            password=values.get("delete_password") or None,
            code=(values.get("delete_code") or "").strip() or None,
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        errors = {f"delete_{exc.field}" if exc.field else "delete_form": exc.message}
        return await _account_page(request, caller, session, errors, exc.status_code)
    # Every session of the account ended with the request; the cookie goes too.
    response = redirect(request, "/account-deleted")
    clear_cookie(response, settings, SESSION_COOKIE)
    return response


@public_router.get("/account-deleted", response_class=HTMLResponse)
async def account_deleted(request: Request) -> Response:
    return render(request, "public/account_deleted.html")
