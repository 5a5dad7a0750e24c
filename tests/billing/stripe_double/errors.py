"""Errors shaped as Stripe's: `{"error": {"type", "code", "message", "param"}}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class StripeError(Exception):
    """An answer the double refuses with, in Stripe's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param


def missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid", param=param)


def no_such(kind: str, id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{id}'", code="resource_missing", param=param)


def error_response(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status)


async def stripe_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StripeError)
    return error_response(exc.status, exc.body)
