"""Render every failure as `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from saassy.kit.db_outage import is_database_outage
from saassy.kit.errors import DatabaseUnavailable, ErrorBody, ErrorResponse, SaassyError

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _response(
    status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorResponse(error=body).model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
    )


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or ("body" if loc[:1] == ("body",) else None)


async def saassy_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SaassyError)
    if exc.status_code >= 500:
        log.error("request failed", code=exc.code, path=request.url.path)
    body = ErrorBody(code=exc.code, message=exc.message, field=exc.field, details=exc.details)
    return _response(exc.status_code, body, exc.headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "Invalid request.", "type": "invalid"}
    if first.get("type") == "json_invalid":
        return _response(
            400, ErrorBody(code="invalid_json", message="The request body is not valid JSON.")
        )
    field = _field_of(tuple(first.get("loc", ())))
    # A validator's ValueError reads "Value error, <what>": the prefix says nothing to a client.
    message = str(first.get("msg", "Invalid value.")).removeprefix("Value error, ")
    problems = [
        {
            "field": _field_of(tuple(e.get("loc", ()))),
            "message": str(e.get("msg")).removeprefix("Value error, "),
            "type": e.get("type"),
        }
        for e in errors[:20]
    ]
    return _response(
        422,
        ErrorBody(
            code="validation_error",
            message=f"{field}: {message}" if field else message,
            field=field,
            details={"errors": problems},
        ),
    )


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: the router's own 405 names only the first
    route that matched the path, not the others at the same path."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        # Asking each route as if the request had used `method` (included routers recurse).
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; this path allows {', '.join(allowed)}."
    if exc.status_code == 400 and "parsing the body" in message:
        code, message = (
            "invalid_body",
            "The request body could not be read as JSON: it must be UTF-8 JSON text, nested at "
            "most about 1,000 levels, with integers of at most 4,300 digits.",
        )
    return _response(exc.status_code, ErrorBody(code=code, message=message), headers)


# What a lost database connection raises: SQLAlchemy's wrapped errors, and the socket's own
# when the driver cannot connect at all. Handled here rather than as any Exception, so the
# 503 is an answer, not an error the server logs with a traceback.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, OSError)


def database_outage(exc: Exception) -> DatabaseUnavailable:
    """The 503 for a database out of reach; anything else the database raised goes on to the
    unexpected-error handler, as before."""
    if not is_database_outage(exc):
        raise exc
    return DatabaseUnavailable()


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return await saassy_error_handler(request, database_outage(exc))


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", path=request.url.path, error_type=type(exc).__name__)
    return _response(
        500, ErrorBody(code="internal_error", message="Something went wrong on our side.")
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SaassyError, saassy_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, database_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
