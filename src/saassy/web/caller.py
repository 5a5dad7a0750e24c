"""Who is looking at a dashboard page: the same principal the API resolves from a token,
resolved here from the session cookie, with the organization the dashboard acts on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from saassy.accounts.browser_sessions import live_browser_session
from saassy.auth.dependencies import principal_of_user
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.deps import ClientIP, Context, Session
from saassy.kit.db import yield_sqlite_lock
from saassy.kit.errors import Forbidden, NotFound, SaassyError
from saassy.kit.ratelimit import expose
from saassy.models import BrowserSession, Organization, Role, User
from saassy.organizations.repository import OrganizationRepository
from saassy.web.cookies import SESSION_COOKIE
from saassy.web.csrf import check_csrf


class LoginRequired(SaassyError):
    """A page for signed-in users was asked for without a live session: go to the login page."""

    status_code = 401
    code = "login_required"


@dataclass(frozen=True)
class DashboardCaller:
    user: User
    principal: Principal
    browser_session: BrowserSession
    organization: ActiveOrganization
    # Every organization the user belongs to, in the order they joined (the switcher).
    organizations: list[Organization]

    @property
    def current(self) -> Organization:
        return next(o for o in self.organizations if o.id == self.organization.id)

    def can(self, minimum: Role) -> bool:
        return self.organization.role.rank >= minimum.rank


@dataclass(frozen=True)
class UserView:
    id: uuid.UUID
    email: str
    email_verified_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class OrganizationView:
    id: uuid.UUID
    name: str
    plan: str
    personal: bool


@dataclass(frozen=True)
class CallerView:
    """What templates show of the caller, copied out of the ORM: an error page is rendered after
    the request's transaction rolled back, when the loaded rows can no longer be read."""

    user: UserView
    principal: Principal
    organization: ActiveOrganization
    organizations: list[OrganizationView]

    @classmethod
    def of(cls, caller: DashboardCaller) -> CallerView:
        user = caller.user
        return cls(
            user=UserView(user.id, user.email, user.email_verified_at, user.created_at),
            principal=caller.principal,
            organization=caller.organization,
            organizations=[
                OrganizationView(o.id, o.name, o.plan, o.personal) for o in caller.organizations
            ],
        )

    @property
    def current(self) -> OrganizationView:
        return next(o for o in self.organizations if o.id == self.organization.id)

    def can(self, minimum: Role) -> bool:
        return self.organization.role.rank >= minimum.rank


async def csrf_guard(request: Request, ctx: Context) -> None:
    """On every dashboard router: unsafe methods carry this browser's CSRF token."""
    await check_csrf(request, ctx.settings)


async def optional_caller(
    request: Request, session: Session, ctx: Context, ip: ClientIP
) -> DashboardCaller | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    record = await live_browser_session(session, token)
    if record is None:
        return None
    principal = await principal_of_user(session, record.user_id)
    user = await session.get(User, record.user_id)
    if principal is None or user is None:
        return None
    found = {o.id: o for o in await OrganizationRepository(session).all_in_scope(principal.scope)}
    organizations = [found[o] for o in principal.roles if o in found]
    chosen: uuid.UUID | None = record.organization_id
    if chosen not in found:
        chosen = principal.default_organization_id
    if chosen not in found:
        chosen = organizations[0].id if organizations else None
    if chosen is None:
        raise Forbidden(
            "Your account belongs to no organization; ask an owner for an invitation.",
            code="no_organization",
        )
    await yield_sqlite_lock(session)  # rate limiting comes next, not SQL
    limit = ctx.settings.dashboard_limit_per_user
    expose(request, await ctx.limiter.hit(limit, "dashboard", str(principal.user_id)))
    caller = DashboardCaller(
        user=user,
        principal=principal,
        browser_session=record,
        organization=ActiveOrganization(
            id=chosen,
            role=principal.roles[chosen],
            plan=principal.plans[chosen],
            plan_overrides=principal.plan_overrides.get(chosen),
        ),
        organizations=organizations,
    )
    request.state.caller = CallerView.of(caller)
    return caller


async def required_caller(
    caller: Annotated[DashboardCaller | None, Depends(optional_caller)],
) -> DashboardCaller:
    if caller is None:
        raise LoginRequired("Sign in to see this page.")
    return caller


async def staff_caller(
    caller: Annotated[DashboardCaller, Depends(required_caller)],
) -> DashboardCaller:
    if not caller.principal.is_staff:
        # As for another tenant's pages: nothing says the area exists.
        raise NotFound("Page")
    return caller


MaybeCaller = Annotated[DashboardCaller | None, Depends(optional_caller)]
Caller = Annotated[DashboardCaller, Depends(required_caller)]
StaffCaller = Annotated[DashboardCaller, Depends(staff_caller)]
