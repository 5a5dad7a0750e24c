"""Whether an organization's Stripe subscription is paid up enough to run up overage."""

from __future__ import annotations

from datetime import datetime, timedelta

from saassy.kit.time import as_utc
from saassy.models import BillingSubscription

LIVE_STATUSES = frozenset({"active", "trialing"})
PAST_DUE = "past_due"


def paying(subscription: BillingSubscription | None, now: datetime, grace: timedelta) -> bool:
    """Active or trialing, or past due for less than the grace period.

    A past-due subscription whose start of arrears is not known yet (the webhook that records
    it has not come) counts as within its grace: the grace period runs from when it is known."""
    if subscription is None:
        return False
    if subscription.status in LIVE_STATUSES:
        return True
    if subscription.status != PAST_DUE:
        return False
    since = subscription.past_due_since
    return since is None or now < as_utc(since) + grace
