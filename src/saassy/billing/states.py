"""What each Stripe subscription status means for the organization's plan.

- active, trialing: the subscribed plan.
- past_due: Stripe retries the payment; the plan keeps working for SAASSY_BILLING_GRACE_DAYS
  from when the platform first saw it past due (a banner and one e-mail meanwhile), then the
  default plan (the grace sweep, grace.py, moves it without waiting for an event).
- unpaid, canceled, incomplete, incomplete_expired, paused: the default plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from saassy.kit.time import as_utc

GRANTING = frozenset({"active", "trialing"})
PAST_DUE = "past_due"
# The organization holds a subscription: checkout is refused, the portal changes it.
HOLDING = frozenset({"active", "trialing", "past_due", "unpaid", "paused"})


def grace_end(past_due_since: datetime, grace_days: int) -> datetime:
    return as_utc(past_due_since) + timedelta(days=grace_days)


def entitled_plan(
    status: str,
    subscribed_plan: str,
    past_due_since: datetime | None,
    *,
    default_plan: str,
    grace_days: int,
    now: datetime,
) -> str:
    """The plan an organization is on given its subscription's status at `now`."""
    if status in GRANTING:
        return subscribed_plan
    past_due = status == PAST_DUE and past_due_since is not None
    if past_due and now < grace_end(past_due_since, grace_days):  # type: ignore[arg-type]
        return subscribed_plan
    return default_plan
