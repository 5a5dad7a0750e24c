"""The billing page's figures: the subscription, usage against the plan, what the period is
projected to cost, the spend cap and Stripe's invoices. Shared with the home page's banner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.account import billing_state
from saassy.billing.caps.service import SpendCapStatus, spend_cap_status
from saassy.billing.checkout import purchasable
from saassy.billing.errors import StripeUnavailable
from saassy.billing.invoices import InvoiceLine, recent_invoices
from saassy.billing.projection import Projection, flat_for_month, prorated_from, to_cents
from saassy.billing.schemas import BillingState
from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import Organization
from saassy.plans.catalog import Plan
from saassy.plans.service import effective_plan
from saassy.web.pages.usage_view import Usage, usage_of
from saassy.web.templating import PAGE_HEADERS

# Stripe's own pages, where the checkout and portal forms' redirects lead.
STRIPE_PAGES = "https://checkout.stripe.com https://billing.stripe.com"


@dataclass(frozen=True)
class ProjectedCost:
    """The period's flat price plus the overage so far; `flat` None: priced by contract.
    `prorated_from`: the subscription began this month, and `flat` is the rest of it."""

    flat: Decimal | None
    overage: Decimal
    tasks_over: int
    compute_units: Decimal
    prorated_from: datetime | None = None

    @property
    def total(self) -> Decimal | None:
        return None if self.flat is None else to_cents(self.flat + self.overage)


@dataclass(frozen=True)
class PastDue:
    """A failed payment: the plan kept until `grace_ends_at`, unless the card is updated."""

    plan_name: str
    grace_ends_at: datetime | None


@dataclass(frozen=True)
class BillingView:
    state: BillingState
    plan: Plan
    usage: Usage
    cost: ProjectedCost
    cap: SpendCapStatus
    # None: Stripe did not answer (the page says so instead of failing).
    invoices: list[InvoiceLine] | None
    past_due: PastDue | None


def stripe_form_targets(settings: Settings) -> str:
    """Origins a billing form's redirect may lead to (Stripe's, or the tests' double)."""
    base = settings.stripe_api_base
    if base is None:
        return STRIPE_PAGES
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def billing_page_headers(settings: Settings) -> dict[str, str]:
    """The page's CSP with Stripe's pages allowed as where its forms' redirects go: a browser
    holds a form's redirect to `form-action`, and checkout and the portal are on Stripe.
    Without Stripe no page has such a form, and the policy stays as strict as elsewhere."""
    if settings.stripe_secret_key is None:
        return {}
    policy = PAGE_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {stripe_form_targets(settings)}"
    )
    return {"Content-Security-Policy": policy}


async def past_due_of(
    session: AsyncSession, ctx: AppContext, organization: Organization
) -> PastDue | None:
    """The home page's banner: only when billing is on and the last payment failed."""
    if ctx.stripe_api is None:
        return None
    state = await billing_state(session, ctx.settings, organization.id, True)
    return _past_due(ctx.settings, state)


def _past_due(settings: Settings, state: BillingState) -> PastDue | None:
    if not state.payment_failed or state.subscription is None:
        return None
    plan = settings.catalog.plans.get(state.subscription.plan)
    name = plan.name if plan is not None else state.subscription.plan
    return PastDue(name, state.subscription.grace_ends_at)


async def billing_view(
    session: AsyncSession, ctx: AppContext, organization: Organization, now: datetime
) -> BillingView:
    settings = ctx.settings
    client = ctx.stripe_api
    state = await billing_state(session, settings, organization.id, client is not None)
    plan = effective_plan(settings.catalog, organization)
    usage = await usage_of(session, settings.catalog, organization, now)
    cap = await spend_cap_status(session, plan, organization.id, now)
    overage = cap.projection
    cost = _projected_cost(plan, state, usage, overage)
    invoices: list[InvoiceLine] | None = []
    if client is not None:
        try:
            invoices = await recent_invoices(session, client, organization.id)
        except StripeUnavailable:
            invoices = None
    return BillingView(state, plan, usage, cost, cap, invoices, _past_due(settings, state))


def _projected_cost(
    plan: Plan, state: BillingState, usage: Usage, overage: Projection
) -> ProjectedCost:
    """The month's flat price, prorated when the plan's subscription began within the month
    (its first invoice charges only the rest of it), plus the overage so far."""
    if plan.price_usd_month is None:
        return ProjectedCost(None, overage.total_usd, overage.tasks_over, overage.compute_units)
    sub = state.subscription
    began = sub.current_period_start if sub is not None and sub.plan == plan.key else None
    month = usage.period_start, usage.period_end
    since = prorated_from(*month, began)
    flat = flat_for_month(Decimal(plan.price_usd_month), *month, since)
    return ProjectedCost(flat, overage.total_usd, overage.tasks_over, overage.compute_units, since)


def sold_plans(settings: Settings) -> set[str]:
    """The plans a customer can buy through checkout here (none without Stripe)."""
    if settings.stripe_secret_key is None:
        return set()
    return {key for key, plan in settings.catalog.plans.items() if purchasable(plan)}
