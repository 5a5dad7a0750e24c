"""One error family for everything a client can be told.

    SaassyError (status_code, code, message, field)
    ├── BadRequest            400  bad_request, invalid_json
    ├── Unauthorized          401  unauthorized, invalid_credentials, token_expired ...
    ├── Forbidden             403  forbidden (a known object the caller may not change)
    ├── NotFound              404  not_found (also: another tenant's object)
    ├── Conflict              409  conflict, email_taken ...
    ├── PayloadTooLarge       413  payload_too_large
    ├── ValidationFailed      422  validation_error (names the field)
    ├── QuotaExceeded         402  quota_exceeded (what ran out, and when it resets)
    ├── RateLimited           429  rate_limited (with Retry-After)
    └── ServiceUnavailable    503  a shared service is out of reach (with Retry-After)
        └── DatabaseUnavailable    database_unavailable (the connection to it was lost)

Domain packages subclass these; the handlers in `saassy.kit.handlers` render all of them as
`{"error": {"code", "message", "field", ...}}`. An expected failure is never a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The shape of every error answer (documented in OpenAPI)."""

    error: ErrorBody


class SaassyError(Exception):
    status_code: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.details = details
        self.headers = headers or {}

    def body(self) -> ErrorResponse:
        return ErrorResponse(
            error=ErrorBody(
                code=self.code, message=self.message, field=self.field, details=self.details
            )
        )


class BadRequest(SaassyError):
    status_code = 400
    code = "bad_request"


class Unauthorized(SaassyError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "Authentication required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(SaassyError):
    status_code = 403
    code = "forbidden"


class NotFound(SaassyError):
    status_code = 404
    code = "not_found"

    def __init__(self, what: str = "Resource", **kwargs: Any) -> None:
        super().__init__(f"{what} not found.", **kwargs)


class Conflict(SaassyError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SaassyError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(SaassyError):
    status_code = 422
    code = "validation_error"


class QuotaExceeded(SaassyError):
    status_code = 402
    code = "quota_exceeded"

    def __init__(self, metric: str, *, limit: int, used: int, resets_at: datetime | None) -> None:
        when = f"; it resets at {resets_at.isoformat()}" if resets_at else ""
        super().__init__(
            f"Quota '{metric}' is exhausted ({used} of {limit} used){when}.",
            details={
                "metric": metric,
                "limit": limit,
                "used": used,
                "resets_at": resets_at.isoformat() if resets_at else None,
            },
        )


class RateLimited(SaassyError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int, message: str = "Too many requests.") -> None:
        retry_after_s = max(1, retry_after_s)
        super().__init__(
            f"{message} Retry in {retry_after_s} s.",
            details={"retry_after_s": retry_after_s},
            headers={"Retry-After": str(retry_after_s)},
        )


class ServiceUnavailable(SaassyError):
    """A service the answer depends on is out of reach for now; the client may retry."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: int = 5) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after_s)})


class DatabaseUnavailable(ServiceUnavailable):
    """The database is out of reach (down, restarting, failing over): nothing was written."""

    code = "database_unavailable"

    def __init__(self, retry_after_s: int = 5) -> None:
        super().__init__(
            "The database is out of reach for a moment; nothing was changed. Try again shortly.",
            retry_after_s=retry_after_s,
        )
