"""Auth dependencies: an endpoint's signature says who may call it.

`Authorization: Bearer <token>` carries either an access token (a JWT from login) or an API key
(`sk_...`). Either way the result is a `Principal`; the API rate limit of the caller's plan is
counted here, per API key or per user, and its `X-RateLimit-*` headers go on the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.auth.access_cache import RecentReads
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.auth.repository import AuthRepository, KeyHolder, UserAccess
from saassy.auth.scopes import require_scope
from saassy.context import AppContext
from saassy.deps import ClientIP, Context, Session, app_context, unit_of_work
from saassy.kit.db import yield_sqlite_lock
from saassy.kit.errors import Forbidden, NotFound, Unauthorized
from saassy.kit.ratelimit import expose
from saassy.kit.security import InvalidAccessToken, decode_access_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import ApiKey, ApiKeyScope, Organization, Role
from saassy.plans.service import plan_with_overrides

API_KEY_PREFIX = "sk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(auto_error=False, description="An access token or an API key.")


def key_expired(expires_at: datetime | None, now: datetime) -> bool:
    """A key stops working at its expiry (chosen at creation, or the end of a rotation's
    overlap): the check is made at each request, so no job has to run for it."""
    return expires_at is not None and expires_at <= now


def in_good_standing(holder: KeyHolder, now: datetime) -> bool:
    """Not revoked, not expired, its organization not deleted: a key that may be remembered."""
    return (
        holder.revoked_at is None
        and holder.organization_deleted_at is None
        and not key_expired(holder.expires_at, now)
    )


async def _principal_from_api_key(session: Session, ctx: Context, key: str) -> Principal:
    auth = AuthRepository(session)
    digest = token_digest(key)
    now = utcnow()
    holder = ctx.key_cache.get(digest)
    if holder is None:
        read_at, generation = ctx.key_cache.clock(), ctx.key_cache.generation
        holder = await auth.key_holder(digest)
        if holder is not None and in_good_standing(holder, now):
            ctx.key_cache.put(digest, holder, read_at, generation)
    if (
        holder is None
        or holder.revoked_at is not None
        or holder.organization_deleted_at is not None
    ):
        raise Unauthorized("The API key is not valid or was revoked.", code="invalid_api_key")
    if key_expired(holder.expires_at, now):
        message = (
            "The API key was rotated and its overlap has ended; use the key that replaced it."
            if holder.rotated_at is not None
            else "The API key has expired; ask an admin of the organization for a new one."
        )
        raise Unauthorized(message, code="api_key_expired")
    if holder.last_used_at is None or now - holder.last_used_at > LAST_USED_RESOLUTION:
        await auth.record_key_use(holder.key_id, now)
        ctx.key_cache.touch(digest, replace(holder, last_used_at=now))
    organization_id = holder.organization_id
    return Principal(
        user_id=None,
        api_key_id=holder.key_id,
        is_staff=False,
        roles={organization_id: Role.member},
        default_organization_id=organization_id,
        plans={organization_id: holder.plan},
        plan_overrides={organization_id: holder.plan_overrides} if holder.plan_overrides else {},
        api_key_scopes=frozenset(ApiKeyScope(scope) for scope in holder.scopes.split()),
    )


async def principal_of_user(
    session: Session,
    user_id: uuid.UUID,
    remembered: RecentReads[uuid.UUID, UserAccess] | None = None,
) -> Principal | None:
    """The signed-in user's principal (access token or dashboard cookie); None when the account
    is gone or disabled. From `remembered` when given and it holds the user (access tokens:
    auth/access_cache.py)."""
    access = remembered.get(user_id) if remembered is not None else None
    if access is None:
        read_at = remembered.clock() if remembered is not None else 0.0
        generation = remembered.generation if remembered is not None else 0
        access = await AuthRepository(session).user_access(user_id)
        if remembered is not None and access is not None and access.disabled_at is None:
            remembered.put(user_id, access, read_at, generation)
    if access is None or access.disabled_at is not None:
        return None
    grants = access.grants
    personal = next((g.organization_id for g in grants if g.personal), None)
    return Principal(
        user_id=user_id,
        api_key_id=None,
        is_staff=access.is_staff,
        roles={g.organization_id: g.role for g in grants},
        default_organization_id=personal or (grants[0].organization_id if grants else None),
        plans={g.organization_id: g.plan for g in grants},
        plan_overrides={g.organization_id: g.plan_overrides for g in grants if g.plan_overrides},
    )


async def still_allowed_in(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> bool:
    """Whether `principal`, resolved earlier, may still act on `organization_id`: its API key is
    not revoked or expired and the organization not deleted, or its user is still enabled and
    a member. A long stream asks this while it runs; it writes nothing (no last-used time)."""
    if principal.api_key_id is not None:
        row = (
            await session.execute(
                select(ApiKey.revoked_at, ApiKey.expires_at, Organization.deleted_at)
                .join(Organization, Organization.id == ApiKey.organization_id)
                .where(ApiKey.id == principal.api_key_id)
            )
        ).one_or_none()
        return (
            row is not None
            and row[0] is None
            and not key_expired(row[1], utcnow())
            and row[2] is None
            and organization_id in principal.roles
        )
    if principal.user_id is None:
        return False
    current = await principal_of_user(session, principal.user_id)
    return current is not None and organization_id in current.roles


async def _principal_from_access_token(
    session: Session,
    ctx: Context,
    token: str,
    remembered: RecentReads[uuid.UUID, UserAccess] | None,
) -> Principal:
    try:
        claims = decode_access_token(token, ctx.settings.signing_secret)
    except InvalidAccessToken as exc:
        message = (
            "The access token has expired."
            if exc.reason == "token_expired"
            else ("The access token is not valid.")
        )
        raise Unauthorized(message, code=exc.reason) from exc
    principal = await principal_of_user(session, claims.user_id, remembered)
    if principal is None:
        raise Unauthorized("The access token is not valid.", code="invalid_token")
    return principal


async def admit_call(
    request: Request, session: Session, ctx: Context, principal: Principal
) -> None:
    """Count an API call against the rate limit of the caller's default organization's
    effective plan (its overrides included)."""
    await yield_sqlite_lock(session)  # validation and rate limiting come next, not SQL
    catalog = ctx.settings.catalog
    organization_id = principal.default_organization_id
    plan = (
        plan_with_overrides(
            catalog,
            principal.plans[organization_id],
            principal.plan_overrides.get(organization_id),
            organization_id,
        )
        if organization_id
        else catalog.plan(catalog.default_plan)
    )
    expose(request, await ctx.limiter.hit(plan.api_rate_limit, "api", *principal.rate_limit_key))


async def get_principal(
    request: Request,
    session: Session,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    return await authenticate(request, session, ctx, credentials)


async def authenticate(
    request: Request,
    session: AsyncSession,
    ctx: AppContext,
    credentials: HTTPAuthorizationCredentials | None,
    *,
    submission: bool = False,
) -> Principal:
    """The caller, counted against its rate limit, its API key's scopes checked for the route.
    A user's remembered access serves reads and submissions only: what another change could make
    under a role taken away meanwhile (an API key, an invitation) would outlive the bound."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    token = credentials.credentials
    if token.startswith(API_KEY_PREFIX):
        principal = await _principal_from_api_key(session, ctx, token)
    else:
        remember = submission or request.method in SAFE_METHODS
        remembered = ctx.user_cache if remember else None
        principal = await _principal_from_access_token(session, ctx, token, remembered)
    await admit_call(request, session, ctx, principal)
    if principal.api_key_scopes is not None:
        require_scope(request.scope.get("route"), request.method, principal.api_key_scopes)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_user_principal(principal: CurrentPrincipal) -> Principal:
    if principal.user_id is None:
        raise Forbidden(
            "This endpoint needs a signed-in user, not an API key.", code="user_required"
        )
    return principal


async def get_staff_principal(
    principal: Annotated[Principal, Depends(get_user_principal)],
) -> Principal:
    if not principal.is_staff:
        raise Forbidden("Staff only.", code="staff_required")
    return principal


CurrentUser = Annotated[Principal, Depends(get_user_principal)]
StaffUser = Annotated[Principal, Depends(get_staff_principal)]


ORGANIZATION_HEADER = "Saassy-Organization"
ORGANIZATION_HEADER_HELP = "The organization to act on; defaults to the caller's personal one."
OrganizationHeader = Annotated[
    uuid.UUID | None, Header(alias=ORGANIZATION_HEADER, description=ORGANIZATION_HEADER_HELP)
]


async def get_active_organization(
    principal: CurrentPrincipal, organization: OrganizationHeader = None
) -> ActiveOrganization:
    return active_organization(principal, organization)


def active_organization(principal: Principal, organization: uuid.UUID | None) -> ActiveOrganization:
    """The organization the call acts on (the header's, else the caller's default); 404 when
    the caller is no member of it."""
    organization_id = organization or principal.default_organization_id
    role = principal.role_in(organization_id) if organization_id else None
    if organization_id is None or role is None:
        raise NotFound("Organization")
    return ActiveOrganization(
        id=organization_id,
        role=role,
        plan=principal.plans[organization_id],
        plan_overrides=principal.plan_overrides.get(organization_id),
    )


def require_role(minimum: Role) -> object:
    """A dependency asserting the caller's role in the active organization is at least `minimum`."""

    async def check(
        active: Annotated[ActiveOrganization, Depends(get_active_organization)],
    ) -> ActiveOrganization:
        if active.role.rank < minimum.rank:
            raise Forbidden(f"This needs the {minimum.value} role or higher.", code="role_required")
        return active

    return Depends(check)


CurrentOrganization = Annotated[ActiveOrganization, Depends(get_active_organization)]
OrganizationAdmin = Annotated[ActiveOrganization, require_role(Role.admin)]


async def anonymous_rate_limit(request: Request, ctx: Context, ip: ClientIP) -> None:
    """Per-IP limit for endpoints anyone may call (sign-up, plans, magic links)."""
    expose(request, await ctx.limiter.hit(ctx.settings.anonymous_limit_per_ip, "anon", ip))


@dataclass(frozen=True)
class OrganizationCall:
    """An authenticated call acting on one organization, with the request's unit of work."""

    ctx: AppContext
    session: AsyncSession
    principal: Principal
    organization: ActiveOrganization


_ORGANIZATION_ID = TypeAdapter(uuid.UUID)


def organization_header(value: str | None) -> uuid.UUID | None:
    """The `Saassy-Organization` header as an id; 422 naming it when it is none."""
    if value is None:
        return None
    try:
        return _ORGANIZATION_ID.validate_python(value)
    except ValidationError as exc:
        located = [{**error, "loc": ("header", ORGANIZATION_HEADER)} for error in exc.errors()]
        raise RequestValidationError(located) from None


async def get_organization_call(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    organization: Annotated[
        str | None,
        Header(
            alias=ORGANIZATION_HEADER,
            description=ORGANIZATION_HEADER_HELP,
            json_schema_extra={"format": "uuid"},
        ),
    ] = None,
) -> AsyncIterator[OrganizationCall]:
    """What `Context`, `Session`, `CurrentPrincipal` and `CurrentOrganization` give, solved as
    one dependency: on the busiest route FastAPI's solving of the nested ones cost more than
    authenticating did. The same checks, in the same order: the header is read as text and
    parsed only once the caller is authenticated and counted, so a caller without a credential
    gets 401, not a 422 that FastAPI's own parsing would give before any of it ran."""
    ctx = app_context(request)
    async with unit_of_work(ctx) as session:
        principal = await authenticate(request, session, ctx, credentials, submission=True)
        active = active_organization(principal, organization_header(organization))
        yield OrganizationCall(ctx, session, principal, active)


InOrganization = Annotated[OrganizationCall, Depends(get_organization_call, scope="function")]
