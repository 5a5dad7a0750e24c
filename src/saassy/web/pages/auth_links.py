"""Pages behind the links we e-mail: magic-link sign-in, password reset, e-mail verification.

A GET never uses a token up (mail scanners fetch links before people do): it shows a button
whose form POSTs the token. Pages that carry a token are not cached and send no Referer, so the
token does not leak to other sites.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from saassy.accounts import magic_links, passwords, throttle, verification
from saassy.accounts.router import MAGIC_LINK_ACCEPTED, RESET_ACCEPTED
from saassy.accounts.schemas import (
    MagicLinkVerifyRequest,
    PasswordResetRequest,
)
from saassy.deps import ClientIP, Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.email_address import EmailAddress
from saassy.kit.errors import SaassyError
from saassy.web.caller import MaybeCaller
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form
from saassy.web.pages.auth import MIN_PASSWORD, signed_in
from saassy.web.templating import TOKEN_PAGE_HEADERS, redirect, render

router = APIRouter()


def _token_page(
    request: Request,
    template: str,
    token: str,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **context: object,
) -> Response:
    errors = errors or {}
    return render(
        request,
        template,
        {"token": token, "errors": errors, "error": errors.get("form"), **context},
        status_code=status_code,
        headers=TOKEN_PAGE_HEADERS,
    )


class AddressForm(BaseModel):
    email: EmailAddress


async def _email_form(
    request: Request,
    template: str,
    send: Callable[[str], Awaitable[None]],
    back_to: str,
    accepted: str,
) -> Response:
    """A form asking for an address to e-mail a link to: the same answer for every address
    (throttles and refusals shown beside the field)."""
    email = (await form_data(request)).get("email", "").strip()
    try:
        await send(parse_form(AddressForm, {"email": email}).email)
    except FormInvalid as exc:
        return render(request, template, {"email": email, "errors": exc.errors}, status_code=422)
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return render(
            request,
            template,
            {"email": email, "errors": error_of(exc)},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return redirect(request, back_to, message=accepted, kind="info")


# Magic links


@router.get("/login/magic", response_class=HTMLResponse)
async def magic_link_page(request: Request, token: str | None = None) -> Response:
    """Without a token: ask for an address. With one: a button that signs in with it."""
    if token is None:
        return render(request, "auth/magic_link_request.html", {"email": "", "errors": {}})
    return _token_page(request, "auth/magic_link.html", token)


@router.post("/login/magic", response_class=HTMLResponse)
async def request_magic_link(
    request: Request, session: Session, settings: SettingsDep, limiter: Limiter, ip: ClientIP
) -> Response:
    async def send(email: str) -> None:
        await throttle.admit_magic_link_request(limiter, settings, email=email, ip=ip)
        await magic_links.send_magic_link(session, settings, email=email)

    return await _email_form(
        request, "auth/magic_link_request.html", send, "/login/magic", MAGIC_LINK_ACCEPTED.message
    )


@router.post("/login/magic/verify", response_class=HTMLResponse)
async def sign_in_with_magic_link(
    request: Request, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    token = (await form_data(request)).get("token", "")
    try:
        body = parse_form(MagicLinkVerifyRequest, {"token": token})
        redeemed = await magic_links.redeem_magic_link(session, settings, body.token, origin=origin)
    except FormInvalid:
        return _token_page(
            request,
            "auth/magic_link.html",
            "",
            {"form": "This sign-in link is not valid."},
            status_code=422,
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return _token_page(
            request, "auth/magic_link.html", "", error_of(exc), status_code=exc.status_code
        )
    return await signed_in(request, session, settings, redeemed.user, "/app")


# Forgotten passwords


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(request: Request) -> Response:
    return render(request, "auth/forgot_password.html", {"email": "", "errors": {}})


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(
    request: Request, session: Session, settings: SettingsDep, limiter: Limiter, ip: ClientIP
) -> Response:
    async def send(email: str) -> None:
        await throttle.admit_email_request(
            limiter, settings, kind="password-reset", email=email, ip=ip
        )
        await passwords.send_password_reset(session, settings, email=email)

    return await _email_form(
        request, "auth/forgot_password.html", send, "/forgot-password", RESET_ACCEPTED.message
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(request: Request, token: str = "") -> Response:
    return _token_page(request, "auth/reset_password.html", token, min_password=MIN_PASSWORD)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password(request: Request, session: Session, settings: SettingsDep) -> Response:
    values = await form_data(request)
    token = values.get("token", "")
    try:
        body = parse_form(
            PasswordResetRequest, {"token": token, "password": values.get("password", "")}
        )
        await passwords.reset_password(session, settings, token=body.token, password=body.password)
    except FormInvalid as exc:
        errors = exc.errors
        if "token" in errors:
            errors = {"form": "This password reset link is not valid."}
            token = ""
        return _token_page(
            request,
            "auth/reset_password.html",
            token,
            errors,
            status_code=422,
            min_password=MIN_PASSWORD,
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return _token_page(
            request,
            "auth/reset_password.html",
            "",
            error_of(exc),
            status_code=exc.status_code,
            min_password=MIN_PASSWORD,
        )
    return redirect(
        request,
        "/login",
        message="Your password is changed and every session is logged out; log in with it.",
    )


# E-mail verification


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(request: Request, token: str = "") -> Response:
    return _token_page(request, "auth/verify_email.html", token)


@router.post("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request, session: Session, caller: MaybeCaller) -> Response:
    token = (await form_data(request)).get("token", "")
    try:
        body = parse_form(MagicLinkVerifyRequest, {"token": token})
        await verification.verify_email(session, body.token)
    except FormInvalid:
        return _token_page(
            request,
            "auth/verify_email.html",
            "",
            {"form": "This verification link is not valid."},
            status_code=422,
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return _token_page(
            request, "auth/verify_email.html", "", error_of(exc), status_code=exc.status_code
        )
    message = "Your e-mail address is verified."
    return redirect(request, "/app/account" if caller else "/login", message=message)
