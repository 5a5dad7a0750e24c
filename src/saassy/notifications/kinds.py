"""The kinds of e-mail a user can turn on or off, with their defaults and wording."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NotificationKind(StrEnum):
    task_failed = "task_failed"
    quota_warning = "quota_warning"
    quota_exhausted = "quota_exhausted"
    webhook_disabled = "webhook_disabled"
    payment_failed = "payment_failed"


@dataclass(frozen=True)
class KindInfo:
    default: bool
    label: str
    description: str


KINDS: dict[NotificationKind, KindInfo] = {
    NotificationKind.task_failed: KindInfo(
        False,
        "Task failed",
        "A task you submitted (or one submitted with an API key you created) failed or timed "
        "out. At most 10 an hour.",
    ),
    NotificationKind.quota_warning: KindInfo(
        True,
        "Quota at 80%",
        "An organization you own or administer has used 80% of its monthly tasks.",
    ),
    NotificationKind.quota_exhausted: KindInfo(
        True,
        "Quota used up",
        "An organization you own or administer has used all of its monthly tasks.",
    ),
    NotificationKind.webhook_disabled: KindInfo(
        True,
        "Webhook endpoint disabled",
        "An endpoint of an organization you own stopped receiving webhooks after failing for days.",
    ),
    NotificationKind.payment_failed: KindInfo(
        True,
        "Payment failed",
        "A payment for an organization you own or administer failed.",
    ),
}

PREFERENCES_PAGE = "/app/account/notifications"


def why_footer(base_url: str, reason: str, kind: NotificationKind) -> str:
    """The lines every notification ends with: why it came, and where to turn it off."""
    link = f"{base_url.rstrip('/')}{PREFERENCES_PAGE}"
    return (
        f'\n--\nYou get this e-mail because {reason}, and your "{KINDS[kind].label}" '
        f"notifications are on. Change which e-mails you get at {link}\n"
    )
