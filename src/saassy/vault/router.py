"""`/api/v1/secrets`: the active organization's secrets (`Saassy-Organization` picks it).

Values are write-only: every answer carries a secret's name and times, never its value.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.tasks.catalog import SECRET_NAME_PATTERN
from saassy.vault import service
from saassy.vault.schemas import SecretOut, SecretPut

router = APIRouter(prefix="/secrets", tags=["secrets"], dependencies=[READ_OR_ADMIN])

SecretNameParam = Annotated[
    str,
    Path(
        pattern=SECRET_NAME_PATTERN,
        description="Letters, digits and '_', not starting with a digit; at most 64.",
    ),
]


@router.get("")
async def list_secrets(
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[SecretOut]:
    """The active organization's secrets: names and times, oldest first (any member)."""
    rows, next_cursor = await service.list_secrets(session, principal, organization.id, page)
    return Page(items=[SecretOut.model_validate(item) for item in rows], next_cursor=next_cursor)


@router.get("/{name}")
async def get_secret(
    name: SecretNameParam,
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
) -> SecretOut:
    """One secret's name and times (any member); its value is never returned."""
    return SecretOut.model_validate(
        await service.get_secret(session, principal, organization.id, name)
    )


@router.put(
    "/{name}",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "An existing secret's value was replaced."}},
)
async def put_secret(
    name: SecretNameParam,
    body: SecretPut,
    response: Response,
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> SecretOut:
    """Store a secret (201) or replace its value (200); admin or owner."""
    item, created = await service.put_secret(
        session,
        settings.vault_keyring,
        principal,
        organization,
        name,
        body.value.get_secret_value(),
        origin=origin,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return SecretOut.model_validate(item)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(
    name: SecretNameParam,
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
) -> Response:
    """Delete a secret (admin or owner); tasks that need it are refused from then on."""
    await service.delete_secret(session, principal, organization, name, origin=origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
