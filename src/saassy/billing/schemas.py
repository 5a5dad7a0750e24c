"""What `/api/v1/billing` takes and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CheckoutRequest(BaseModel):
    plan: str = Field(min_length=1, max_length=40, description="A paid plan's key, e.g. pro.")


class RedirectUrl(BaseModel):
    url: str = Field(description="Where to send the customer's browser (a Stripe page).")


class SubscriptionState(BaseModel):
    status: str = Field(description="Stripe's: active, trialing, past_due, unpaid, canceled...")
    plan: str = Field(description="The plan subscribed to.")
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None
    grace_ends_at: datetime | None = Field(
        description="When a past-due organization moves to the default plan."
    )


class BillingState(BaseModel):
    enabled: bool = Field(description="False: no Stripe here; plans are assigned by staff.")
    plan: str = Field(description="The plan the organization is on now.")
    subscription: SubscriptionState | None
    payment_failed: bool = Field(
        description="Past due: show a banner asking to update the card before grace_ends_at."
    )


class WebhookReceipt(BaseModel):
    received: bool = True
    duplicate: bool = Field(False, description="The event id was processed already.")
