"""Errors on dashboard pages are pages: the API's handlers answer JSON under /api and /health;
everywhere else a person is reading, so they get a page that says what happened and what next."""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from saassy.kit import handlers
from saassy.kit.errors import SaassyError
from saassy.web.caller import LoginRequired
from saassy.web.templating import redirect, render

log = structlog.get_logger(__name__)

# Machine-read paths keep JSON errors.
NOT_PAGES = ("/api/", "/health", "/ready", "/metrics", "/static/")

TITLES = {
    400: "That request could not be read",
    401: "Sign in to continue",
    403: "You cannot do that here",
    404: "Page not found",
    405: "That is not allowed here",
    409: "That conflicts with the current state",
    410: "That is no longer available",
    413: "That is too large",
    422: "Some of that is not valid",
    429: "Slow down a little",
    500: "Something went wrong on our side",
    503: "We will be right back",
}
HINTS = {
    403: "If you think you should have access, ask an owner of the organization.",
    404: "It may have been deleted, or it belongs to an organization you are not in.",
    410: "It expired and was removed. A data export can be requested again from your account.",
    429: "Too many requests in a short time; wait a moment and try again.",
    500: "It is not your fault. Try again in a moment; if it keeps happening, contact support.",
    503: "Part of the service is briefly out of reach. Nothing was changed; try again in a moment.",
}


def is_page(request: Request) -> bool:
    path = request.url.path
    return path != "/api" and not path.startswith(NOT_PAGES)


def error_page(request: Request, status: int, message: str | None) -> Response:
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": TITLES.get(status, "That did not work"),
            "message": message,
            "hint": HINTS.get(status),
        },
        status_code=status,
    )


async def saassy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SaassyError)
    if not is_page(request):
        return await handlers.saassy_error_handler(request, exc)
    if isinstance(exc, LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        nxt = target if request.method == "GET" else "/app"
        return redirect(request, "/login?" + urlencode({"next": nxt}))
    message = exc.message if exc.status_code < 500 else None
    response = error_page(request, exc.status_code, message)
    response.headers.update(exc.headers)
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    if not is_page(request):
        return await handlers.validation_error_handler(request, exc)
    assert isinstance(exc, RequestValidationError)
    return error_page(request, 422, "Some of what was sent is missing or not valid.")


async def http_error(request: Request, exc: Exception) -> Response:
    if not is_page(request):
        return await handlers.http_error_handler(request, exc)
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
    return error_page(request, exc.status_code, message)


async def database_error(request: Request, exc: Exception) -> Response:
    return await saassy_error(request, handlers.database_outage(exc))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    if not is_page(request):
        return await handlers.unexpected_error_handler(request, exc)
    log.exception("page failed", path=request.url.path, error_type=type(exc).__name__)
    return error_page(request, 500, None)


def install_page_errors(app: FastAPI) -> None:
    """After the API's handlers: these answer pages and hand API paths back to them."""
    app.add_exception_handler(SaassyError, saassy_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for database_error_type in handlers.DATABASE_ERRORS:
        app.add_exception_handler(database_error_type, database_error)
    app.add_exception_handler(Exception, unexpected_error)
