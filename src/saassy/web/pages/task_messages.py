"""Domain refusals said plainly on the task pages."""

from __future__ import annotations

from datetime import datetime

from saassy.billing.caps.errors import SpendCapReached
from saassy.kit.errors import QuotaExceeded

METRIC_NAMES = {"tasks": "tasks this month"}


def quota_message(exc: QuotaExceeded) -> str:
    """ "Your plan's 100 tasks this month are used up (100 of 100); it resets on 1 Jan 2027 at
    00:00 UTC." with what to do; a spend cap's refusal says itself."""
    if isinstance(exc, SpendCapReached):
        return exc.message
    details = exc.details or {}
    metric = str(details.get("metric", "tasks"))
    name = METRIC_NAMES.get(metric, metric.removeprefix("action:") + " actions today")
    limit, used = details.get("limit"), details.get("used")
    text = f"Your plan's {limit:,} {name} are used up ({used:,} of {limit:,})"
    resets = details.get("resets_at")
    if isinstance(resets, str):
        moment = datetime.fromisoformat(resets)
        text += f"; the quota resets on {moment:%-d %b %Y at %H:%M} UTC"
    return text + ". Wait until then or upgrade your plan for more."
