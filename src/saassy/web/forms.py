"""Form handling shared by pages: the API's own pydantic models validate what a form sent, and
their errors go beside the fields they are about."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from saassy.kit.errors import NotFound, SaassyError
from saassy.web.csrf import FORM_FIELD

Model = TypeVar("Model", bound=BaseModel)


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


async def form_data(request: Request) -> dict[str, str]:
    """The form's text fields (the CSRF token left out); repeated names keep the last value."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != FORM_FIELD}


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(p) for p in error.get("loc", ())) or "form"
        errors.setdefault(name, str(error.get("msg", "Not valid.")).removeprefix("Value error, "))
    return errors


def onto_form(errors: dict[str, str], fields: Collection[str]) -> dict[str, str]:
    """Errors keyed to what the page shows, so a refused form always says why: an error about
    a part of a field (`event_types.0`, `input.url`) goes beside that field, and one about
    anything else (a crafted value of a field the page has no box for) above the form."""
    placed: dict[str, str] = {}
    for key, message in errors.items():
        name = key.split(".", 1)[0]
        placed.setdefault(name if name in fields else "form", message)
    return placed


def parse_form(model: type[Model], data: dict[str, Any]) -> Model:
    """`model` from the form's fields; FormInvalid holds a message per field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid(field_errors(exc)) from None


def error_of(exc: SaassyError) -> dict[str, str]:
    """A domain error as form errors: beside its field if it names one, else above the form."""
    return {exc.field or "form": exc.message}


def status_of_refusal(exc: SaassyError) -> int:
    """The status a form page answers when the domain refused (shown beside the form); a 404
    (another tenant's id) and a server error are not the form's to show, so they go on up."""
    if exc.status_code >= 500 or isinstance(exc, NotFound):
        raise exc
    return exc.status_code
