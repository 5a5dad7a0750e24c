"""The organization's invoices, read from Stripe each time (Stripe keeps them, not us)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.errors import StripeUnavailable
from saassy.billing.repository import CustomerRepository

log = structlog.get_logger(__name__)
SHOWN = 12


@dataclass(frozen=True)
class InvoiceLine:
    id: str
    number: str | None
    created: datetime
    amount_usd: Decimal
    currency: str
    status: str
    pdf_url: str | None
    hosted_url: str | None


def _field(invoice: stripe.Invoice, name: str) -> Any:
    """A field of the invoice, None when absent (a Stripe-compatible server may omit some)."""
    return getattr(invoice, name, None)


def _link(value: Any) -> str | None:
    """A web address the page may link to: a `javascript:` or `data:` one is dropped, whatever
    a Stripe-compatible server at SAASSY_STRIPE_API_BASE answers (the CSP stops a script, the
    link should not be there to stop)."""
    if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
        return None
    return value


def _line(invoice: stripe.Invoice) -> InvoiceLine:
    cents = _field(invoice, "total")
    if cents is None:
        cents = _field(invoice, "amount_due") or 0
    return InvoiceLine(
        id=str(invoice.id),
        number=_field(invoice, "number"),
        created=datetime.fromtimestamp(invoice.created, UTC),
        amount_usd=Decimal(cents).scaleb(-2),
        currency=str(_field(invoice, "currency") or "usd").upper(),
        status=str(_field(invoice, "status") or "draft"),
        pdf_url=_link(_field(invoice, "invoice_pdf")),
        hosted_url=_link(_field(invoice, "hosted_invoice_url")),
    )


async def recent_invoices(
    session: AsyncSession, client: stripe.StripeClient, organization_id: uuid.UUID
) -> list[InvoiceLine]:
    """The newest invoices of the organization's customer (none before its first checkout);
    StripeUnavailable when Stripe does not answer."""
    customer = await CustomerRepository(session).of_organization(organization_id)
    if customer is None:
        return []
    try:
        found = await client.v1.invoices.list_async(
            {"customer": customer.stripe_customer_id, "limit": SHOWN}
        )
    except stripe.StripeError as exc:
        log.warning("billing.invoices_unavailable", error=type(exc).__name__, code=exc.code)
        raise StripeUnavailable() from exc
    return [_line(invoice) for invoice in found.data]
