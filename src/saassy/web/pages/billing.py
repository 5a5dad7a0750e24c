"""Usage & billing: the plan and its subscription, usage and projected cost, the spend cap,
invoices; checkout and Stripe's portal for owners and admins. Plans change only from Stripe's
webhooks: coming back from checkout shows a note, never a new plan."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from saassy.billing.caps import service as caps
from saassy.billing.caps.schemas import MAX_CAP_USD, SpendCapPut
from saassy.billing.checkout import open_portal, start_checkout
from saassy.billing.notices import BILLING_PAGE
from saassy.deps import Context, Session
from saassy.kit.errors import Forbidden, NotFound, SaassyError
from saassy.kit.time import utcnow
from saassy.models import Organization, Role
from saassy.organizations.repository import OrganizationRepository
from saassy.plans.service import effective_plan
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, form_data, status_of_refusal
from saassy.web.pages.billing_view import billing_page_headers, billing_view
from saassy.web.templating import redirect, render

router = APIRouter()

RETURNS = {
    "success": (
        "success",
        "Payment received; your plan changes as soon as Stripe confirms it.",
    ),
    "cancel": ("info", "Checkout canceled; nothing was charged and your plan is unchanged."),
}


# The API's rules (SpendCapPut), said the way a person reads them beside the field.
CAP_MESSAGES = {
    "greater_than_equal": "The cap cannot be negative; enter 0 to allow no overage at all.",
    "less_than_equal": f"The cap can be at most ${MAX_CAP_USD:,} a month.",
    "decimal_max_places": "Use at most 2 decimals (cents), for example 25.50.",
}
CAP_NOT_A_NUMBER = "Enter an amount in US dollars, for example 25.00."


def _monthly_cap(raw: str) -> SpendCapPut:
    try:
        return SpendCapPut.model_validate({"monthly_cap_usd": raw.strip().removeprefix("$")})
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        raise FormInvalid({"monthly_cap_usd": CAP_MESSAGES.get(kind, CAP_NOT_A_NUMBER)}) from None


async def _organization(session: Session, caller: DashboardCaller) -> Organization:
    organization = await OrganizationRepository(session).get_in_scope(
        caller.organization.id, caller.principal.scope
    )
    if organization is None:
        raise NotFound("Organization")
    return organization


def _manager(caller: DashboardCaller) -> None:
    if not caller.can(Role.admin):
        raise Forbidden("Only owners and admins manage billing.", code="insufficient_role")


async def billing_page(
    request: Request,
    caller: DashboardCaller,
    session: Session,
    ctx: Context,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    organization = await _organization(session, caller)
    view = await billing_view(session, ctx, organization, utcnow())
    catalog = ctx.settings.catalog
    context: dict[str, Any] = {
        "organization": organization,
        "view": view,
        "is_admin": caller.can(Role.admin),
        "fallback_plan": catalog.plan(catalog.default_plan).name,
        "errors": errors or {},
        "values": values or {},
    }
    back = RETURNS.get(request.query_params.get("checkout", ""))
    # Without Stripe nobody came back from a checkout: the link is someone's old or made up.
    if back is not None and status_code == 200 and ctx.stripe_api is not None:
        context["flash"] = {"kind": back[0], "message": back[1]}
    return render(
        request,
        "app/billing/billing.html",
        context,
        status_code=status_code,
        headers=billing_page_headers(ctx.settings),
    )


@router.get("/billing", response_class=HTMLResponse)
async def billing(request: Request, caller: Caller, session: Session, ctx: Context) -> Response:
    """The plan, usage and projected cost, the spend cap and the invoices (any member)."""
    return await billing_page(request, caller, session, ctx)


@router.post("/billing/checkout")
async def checkout(request: Request, caller: Caller, session: Session, ctx: Context) -> Response:
    """A Stripe Checkout Session for the chosen plan; the browser goes on to Stripe's page."""
    _manager(caller)
    client = ctx.stripe_api
    if client is None:
        raise NotFound("Page")
    values = await form_data(request)
    try:
        url = await start_checkout(
            session,
            ctx.settings,
            client,
            caller.organization.id,
            caller.current.name,
            values.get("plan", ""),
            caller.user.email,
            limiter=ctx.limiter,
            user_id=caller.user.id,
        )
    except SaassyError as exc:
        if isinstance(exc, NotFound):
            raise
        return redirect(request, BILLING_PAGE, message=exc.message, kind="error")
    return redirect(request, url)


@router.post("/billing/portal")
async def portal(request: Request, caller: Caller, session: Session, ctx: Context) -> Response:
    """Stripe's customer portal: card, invoices, plan changes, cancelation."""
    _manager(caller)
    client = ctx.stripe_api
    if client is None:
        raise NotFound("Page")
    try:
        url = await open_portal(
            session, ctx.settings, client, caller.organization.id,
            limiter=ctx.limiter, user_id=caller.user.id,
        )  # fmt: skip
    except SaassyError as exc:
        if isinstance(exc, NotFound):
            raise
        return redirect(request, BILLING_PAGE, message=exc.message, kind="error")
    return redirect(request, url)


@router.post("/billing/spend-cap")
async def set_spend_cap(
    request: Request, caller: Caller, session: Session, ctx: Context
) -> Response:
    """Set or change the monthly cap on overage (owners and admins)."""
    _manager(caller)
    values = await form_data(request)
    organization = await _organization(session, caller)
    plan = effective_plan(ctx.settings.catalog, organization)
    try:
        body = _monthly_cap(values.get("monthly_cap_usd", ""))
        found = await caps.set_spend_cap(
            session, plan, organization.id, body.monthly_cap_usd, utcnow()
        )
    except FormInvalid as exc:
        return await billing_page(
            request, caller, session, ctx, errors=exc.errors, values=values, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await billing_page(
            request, caller, session, ctx, errors=error_of(exc), values=values, status_code=status
        )
    return redirect(
        request, BILLING_PAGE, message=f"Spend cap set to ${found.monthly_cap_usd} a month."
    )


@router.post("/billing/spend-cap/remove")
async def remove_spend_cap(
    request: Request, caller: Caller, session: Session, ctx: Context
) -> Response:
    """No cap: overage is limited only by the subscription (owners and admins)."""
    _manager(caller)
    await caps.remove_spend_cap(session, caller.organization.id)
    return redirect(request, BILLING_PAGE, message="Spend cap removed.")
