"""Billing through Stripe: who pays for which organization, what was reported, what changed.

Stripe holds the money; these rows hold what the platform needs without asking it: the
organization's customer and subscription as last read from Stripe, the webhook events already
processed, the Stripe objects `saassy billing sync` made from the catalog, the usage reported
to Stripe's meters (an outbox: each row's identifier and value are fixed when it is written),
every plan change and its cause, and each organization's cap on overage spending.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class BillingCustomer(RecordMixin, Base):
    """The Stripe Customer of an organization, created the first time one is needed."""

    __tablename__ = "billing_customers"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)


class BillingSubscription(RecordMixin, Base):
    """An organization's Stripe subscription as last re-read from Stripe (never from an
    event's copy, which may be older than one already applied)."""

    __tablename__ = "billing_subscriptions"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    # Stripe's own: incomplete, incomplete_expired, trialing, active, past_due, unpaid,
    # canceled, paused.
    status: Mapped[str] = mapped_column(String(32))
    plan: Mapped[str] = mapped_column(String(40))  # the catalog plan its price was made for
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    past_due_since: Mapped[datetime | None]
    synced_at: Mapped[datetime]


class StripeEvent(RecordMixin, Base):
    """A webhook event already processed: a replay of its id changes nothing."""

    __tablename__ = "stripe_events"

    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime]


class PlanChangeSource(StrEnum):
    staff = "staff"
    stripe = "stripe"  # a subscription's state, read from Stripe
    grace_ended = "grace_ended"  # past due for longer than SAASSY_BILLING_GRACE_DAYS


class PlanChange(RecordMixin, Base):
    """One change of an organization's plan, and what made it."""

    __tablename__ = "plan_changes"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    from_plan: Mapped[str] = mapped_column(String(40))
    to_plan: Mapped[str] = mapped_column(String(40))
    source: Mapped[PlanChangeSource] = mapped_column(String(16))
    # The Stripe subscription or event, or the staff user, behind the change.
    reference: Mapped[str | None] = mapped_column(String(255))
    changed_at: Mapped[datetime]


class StripeCatalogObject(RecordMixin, Base):
    """A Product, Price or Billing Meter `saassy billing sync` made from the catalog.

    `key` names what it is for (`plan:pro`, `price:pro:month`, `price:pro:tasks`,
    `meter:tasks`); `fingerprint` hashes the fields Stripe will not change on an existing
    object (a Price's amount, currency, interval, meter), so a changed price gets a new row
    and the old one is archived (`active` false) rather than edited."""

    __tablename__ = "stripe_catalog_objects"
    __table_args__ = (UniqueConstraint("kind", "key", "fingerprint"),)

    kind: Mapped[str] = mapped_column(String(16))  # product | price | meter
    key: Mapped[str] = mapped_column(String(120))
    fingerprint: Mapped[str] = mapped_column(String(64))
    stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class MeterReportStatus(StrEnum):
    pending = "pending"
    sent = "sent"  # Stripe accepted it, or answered that it already had its identifier
    # Stripe refused it for good (too old, no such customer or meter) or it was too old to
    # send: not retried; reconciliation shows it as not billable.
    failed = "failed"


class MeterReport(RecordMixin, Base):
    """Usage of one organization on one meter in one hour, as reported to Stripe.

    Written once, with its value and identifier fixed (a retry sends the same pair); sent after
    commit by the meter-event sender, with backoff, never in a task's path."""

    __tablename__ = "meter_reports"
    __table_args__ = (
        UniqueConstraint(
            "organization_id",
            "meter",
            "window_start",
            "usage_period",
            name="uq_meter_reports_organization_meter_window_usage",  # the default is too long
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    meter: Mapped[str] = mapped_column(String(40))  # the catalog meter: tasks | compute_units
    window_start: Mapped[datetime]  # the hour whose usage this reports, and its event's time
    period_start: Mapped[date]  # the month of the window: the invoice it lands on
    # The month whose usage it bills: the window's, or for a carry-over (late usage of a month
    # whose windows were all reported) the month before it.
    usage_period: Mapped[date]
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    # A decimal in the meter's unit, as text: exact on every database, sent as written.
    value: Mapped[str] = mapped_column(String(40))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[MeterReportStatus] = mapped_column(
        String(16), default=MeterReportStatus.pending, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class SpendCap(RecordMixin, Base):
    """The most an organization lets itself be charged for overage in one billing month."""

    __tablename__ = "spend_caps"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    monthly_cap_cents: Mapped[int]
    # The month whose 80% warning was e-mailed, so it goes out once per month.
    warned_for_period: Mapped[date | None]
