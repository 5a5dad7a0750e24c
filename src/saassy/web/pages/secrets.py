"""Secrets of the organization the dashboard works in: names and times for every member; values
stored, replaced and deleted by admins and owners. A value goes in and never comes back out:
not on a page, not in a form refilled after an error, not in a log."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import Conflict, SaassyError
from saassy.kit.pagination import PageParams
from saassy.models import Role, VaultItem
from saassy.plans.catalog import Catalog
from saassy.tasks.catalog import SECRET_NAME_PATTERN, SecretName
from saassy.vault import service
from saassy.vault.errors import SecretNotFound
from saassy.vault.schemas import SecretPut
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form, status_of_refusal
from saassy.web.templating import redirect, render

router = APIRouter()

PAGE = "/app/secrets"
# An organization holds at most this many, so one page shows them all.
ALL_SECRETS = PageParams(limit=service.MAX_SECRETS_PER_ORGANIZATION, after=None)
NAME_RULE = "Not a valid name: use letters, digits and _ (at most 64), not starting with a digit."


class SecretForm(SecretPut):
    """The API's body (a value never repeated in an error) with the name the API takes in
    its path."""

    name: SecretName


def used_by(catalog: Catalog) -> dict[str, list[str]]:
    """Secret name -> the task types that declare it, by name."""
    types: defaultdict[str, list[str]] = defaultdict(list)
    for name in sorted(catalog.task_types):
        for secret in catalog.task_types[name].secrets:
            types[secret].append(name)
    return dict(types)


def valid_name(name: str) -> str:
    """A name from the address: one that cannot be a secret's is as unknown as a missing one."""
    if not re.fullmatch(SECRET_NAME_PATTERN, name):
        raise SecretNotFound()
    return name


@router.get("/secrets", response_class=HTMLResponse)
async def list_secrets(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    items, _ = await service.list_secrets(
        session, caller.principal, caller.organization.id, ALL_SECRETS
    )
    needs = used_by(settings.catalog)
    stored = {item.name for item in items}
    context: dict[str, Any] = {
        "items": items,
        "used_by": needs,
        "missing": [(name, types) for name, types in sorted(needs.items()) if name not in stored],
        "can_write": caller.can(Role.admin),
        "limit": service.MAX_SECRETS_PER_ORGANIZATION,
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/secrets/list.html", context)


def new_page(
    request: Request,
    caller: DashboardCaller,
    settings: SettingsDep,
    *,
    name: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service.ensure_secret_writer(caller.organization)
    context = {
        "name": name,
        "errors": errors or {},
        "used_by": used_by(settings.catalog),
    }
    return render(request, "app/secrets/new.html", context, status_code=status_code)


@router.get("/secrets/new", response_class=HTMLResponse)
async def new_secret_page(
    request: Request, caller: Caller, settings: SettingsDep, name: str = ""
) -> Response:
    return new_page(request, caller, settings, name=name[:64])


async def store(
    session: Session,
    settings: SettingsDep,
    caller: DashboardCaller,
    name: str,
    value: str,
    *,
    creating: bool,
    origin: RequestOrigin,
) -> bool:
    """Store or replace a secret by the API's rules; whether it was created."""
    try:
        body = parse_form(SecretForm, {"name": name, "value": value})
    except FormInvalid as exc:
        errors = exc.errors
        if "name" in errors:
            errors["name"] = NAME_RULE
        if "value" in errors:
            errors["value"] = f"The value {errors['value']}."
        raise
    if creating:
        # The form for a new secret does not overwrite one by accident: replacing is done on
        # the secret's own page.
        try:
            await service.get_secret(session, caller.principal, caller.organization.id, body.name)
        except SecretNotFound:
            pass
        else:
            raise Conflict(
                "A secret with this name exists; open it to replace its value.", field="name"
            )
    _, created = await service.put_secret(
        session,
        settings.vault_keyring,
        caller.principal,
        caller.organization,
        body.name,
        body.value.get_secret_value(),
        origin=origin,
    )
    return created


@router.post("/secrets")
async def create_secret(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    values = await form_data(request)
    name = values.get("name", "").strip()
    try:
        await store(
            session, settings, caller, name, values.get("value", ""), creating=True, origin=origin
        )
    except FormInvalid as exc:
        # The value is never put back into the form: it would be in the page's HTML.
        return new_page(
            request, caller, settings, name=name[:64], errors=exc.errors, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return new_page(
            request, caller, settings, name=name[:64], errors=error_of(exc), status_code=status
        )
    return redirect(request, PAGE, message="Secret stored.")


async def secret_page(
    request: Request,
    session: Session,
    caller: DashboardCaller,
    settings: SettingsDep,
    name: str,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    item: VaultItem = await service.get_secret(
        session, caller.principal, caller.organization.id, valid_name(name)
    )
    context = {
        "item": item,
        "types": used_by(settings.catalog).get(item.name, []),
        "can_write": caller.can(Role.admin),
        "errors": errors or {},
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/secrets/detail.html", context, status_code=status_code)


@router.get("/secrets/{name}", response_class=HTMLResponse)
async def show_secret(
    name: str, request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    return await secret_page(request, session, caller, settings, name)


@router.post("/secrets/{name}")
async def replace_secret(
    name: str,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    values = await form_data(request)
    # Only an existing secret is replaced here; another tenant's name is as unknown as any.
    await service.get_secret(session, caller.principal, caller.organization.id, valid_name(name))
    try:
        await store(
            session, settings, caller, name, values.get("value", ""), creating=False, origin=origin
        )
    except FormInvalid as exc:
        return await secret_page(
            request, session, caller, settings, name, errors=exc.errors, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await secret_page(
            request, session, caller, settings, name, errors=error_of(exc), status_code=status
        )
    return redirect(request, f"{PAGE}/{name}", message="Secret replaced.")


@router.post("/secrets/{name}/delete")
async def delete_secret(
    name: str, request: Request, caller: Caller, session: Session, origin: RequestOrigin
) -> Response:
    await service.delete_secret(
        session, caller.principal, caller.organization, valid_name(name), origin=origin
    )
    return redirect(request, PAGE, message="Secret deleted.")
