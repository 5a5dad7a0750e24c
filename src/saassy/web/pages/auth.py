"""Sign-up, log-in and log-out pages: the API's rules (throttling, device cookies, the same
validation), a dashboard session cookie instead of tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts import service, throttle, verification
from saassy.accounts.browser_sessions import end_browser_session_of_token, start_browser_session
from saassy.accounts.devices import device_cookies, remember_device
from saassy.accounts.schemas import SignupRequest
from saassy.deps import ClientIP, Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.time import utcnow
from saassy.models import User
from saassy.web.caller import MaybeCaller
from saassy.web.cookies import SESSION_COOKIE, clear_cookie, set_session_cookie
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form
from saassy.web.templating import redirect, render

router = APIRouter()

MIN_PASSWORD = 8


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target:
        return "/app"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/app"
    if "\\" in target:
        return "/app"
    return target


async def signed_in(
    request: Request, session: Session, settings: SettingsDep, user: User, to: str
) -> Response:
    """Start a dashboard session for `user` and send the browser on to `to`; a session this
    browser held before ends (whoever it belonged to), so no two live side by side."""
    if (earlier := request.cookies.get(SESSION_COOKIE)) is not None:
        await end_browser_session_of_token(session, earlier)
    ip = request.client.host if request.client else ""
    started = await start_browser_session(
        session, user, user_agent=request.headers.get("user-agent", ""), ip=ip
    )
    response = redirect(request, to)
    set_session_cookie(response, settings, started.token)
    remember_device(response, settings, user.email, utcnow())
    return response


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(
    request: Request, settings: SettingsDep, caller: MaybeCaller, next: str | None = None
) -> Response:
    if caller is not None:
        return redirect(request, safe_next(next))
    return _signup_form(request, settings, {"next": safe_next(next)}, {})


def _signup_form(
    request: Request,
    settings: SettingsDep,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    catalog = settings.catalog
    return render(
        request,
        "auth/signup.html",
        {
            "email": values.get("email", ""),
            "organization": values.get("organization", ""),
            "next": safe_next(values.get("next")),
            "errors": errors,
            "error": errors.get("form"),
            "min_password": MIN_PASSWORD,
            "default_plan_name": catalog.plan(catalog.default_plan).name,
        },
        status_code=status_code,
    )


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request, session: Session, settings: SettingsDep) -> Response:
    values = await form_data(request)
    try:
        body = parse_form(
            SignupRequest,
            {
                "email": values.get("email", ""),
                "password": values.get("password", ""),
                "organization": values.get("organization") or None,
            },
        )
        user, _ = await service.register_user(
            session,
            settings,
            email=body.email,
            password=body.password,
            organization_name=body.organization,
        )
        await verification.send_verification(session, settings, user)
    except FormInvalid as exc:
        return _signup_form(request, settings, values, exc.errors, status_code=422)
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return _signup_form(request, settings, values, error_of(exc), status_code=exc.status_code)
    return await signed_in(request, session, settings, user, safe_next(values.get("next")))


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, caller: MaybeCaller, next: str | None = None) -> Response:
    if caller is not None:
        return redirect(request, safe_next(next))
    return render(request, "auth/login.html", {"email": "", "next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
    origin: RequestOrigin,
) -> Response:
    values = await form_data(request)
    email = values.get("email", "").strip().lower()
    target = safe_next(values.get("next"))
    now = utcnow()
    device = device_cookies(settings).recognise(email, request.cookies, now)
    try:
        await throttle.admit_login_attempt(limiter, settings, email=email, ip=ip, device=device)
        user = await service.authenticate(
            session, settings, email=email, password=values.get("password", ""), origin=origin
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return render(
            request,
            "auth/login.html",
            {"email": email, "next": target, "error": exc.message},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    await throttle.forget_login_failures(limiter, settings, email=email, ip=ip, device=device)
    return await signed_in(request, session, settings, user, target)


@router.post("/logout")
async def logout(request: Request, session: Session, settings: SettingsDep) -> Response:
    """Always possible, even for a browser over its rate limit: the cookie alone names the
    session to end."""
    if (token := request.cookies.get(SESSION_COOKIE)) is not None:
        await end_browser_session_of_token(session, token)
    response = redirect(request, "/login", message="You are logged out.", kind="info")
    clear_cookie(response, settings, SESSION_COOKIE)
    return response
