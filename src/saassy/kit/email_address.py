"""E-mail addresses: the syntax checked by email-validator, reserved domains by environment.

email-validator refuses the special-use top-level domains (`.test`, `.localhost`, `.invalid`)
outright. They are what development and test set-ups use, so the request schemas accept them
(and `.example`) with the syntax otherwise checked as usual; production refuses them, where a
message to such an address can never arrive (`refuse_reserved_domain`, called by the services
that create accounts or send e-mail).
"""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from saassy.kit.errors import ValidationFailed

# RFC 2606 and RFC 6761: never delegated, so never deliverable.
RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost"})
# The one reserved name email-validator lets through when told it runs in a test environment.
_STAND_IN = "test"


def _tld(domain: str) -> str:
    return domain.rsplit(".", 1)[-1].lower()


def normalized_address(value: str) -> str:
    """The address with its domain lower-cased; PydanticCustomError saying what is wrong."""
    local, at, domain = value.rpartition("@")
    tld = _tld(domain)
    reserved = bool(at) and tld in RESERVED_TLDS
    candidate = f"{local}@{domain[: -len(tld)]}{_STAND_IN}" if reserved else value
    try:
        checked = validate_email(candidate, check_deliverability=False, test_environment=reserved)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": str(exc)}
        ) from None
    if reserved:
        return f"{checked.local_part}@{checked.domain[: -len(_STAND_IN)]}{tld}"
    return checked.normalized


EmailAddress = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(normalized_address),
]


class ReservedDomain(ValidationFailed):
    code = "email_reserved_domain"


def refuse_reserved_domain(email: str, *, production: bool, field: str = "email") -> None:
    """In production an address on a reserved domain is a 422: no mail can ever reach it."""
    domain = email.rpartition("@")[2]
    if production and _tld(domain) in RESERVED_TLDS:
        raise ReservedDomain(
            f"{domain} is a reserved domain (.test, .example, .invalid, "
            ".localhost) that can receive no e-mail; use a real address.",
            field=field,
        )
