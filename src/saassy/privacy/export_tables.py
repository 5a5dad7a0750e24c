"""Every table, classified for exports: exported (which rows, which columns left out) or
excluded (and why). A table missing here fails a test, so a new table is decided on.

Two kinds of export share these rules (docs/privacy.md):
- an account export: the caller's own rows, and the data of the organizations they own,
  without other people's personal data (other members, invitations sent to others);
- an organization export (owners): that organization's data, members and invitations included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, false, or_, select

from saassy.models import Base, PlanChangeSource

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class ExportSubject:
    """Whose data an export holds."""

    user_id: uuid.UUID
    email: str
    # The organizations whose data is exported: those the user owns, or the one exported.
    organization_ids: tuple[uuid.UUID, ...]
    # An organization export (its members' personal data included), else an account export.
    organization_export: bool

    @property
    def account_export(self) -> bool:
        return not self.organization_export


Where = Callable[[Table, ExportSubject], ColumnElement[bool]]
Row = dict[str, Any]


@dataclass(frozen=True)
class Exported:
    """Its rows that `where` selects go to `tables/<name>.json`, without `omit`."""

    where: Where
    omit: frozenset[str] = frozenset()
    # Left out in an organization export, where the rows are other people's too.
    omit_for_organization: frozenset[str] = frozenset()
    # Changes a row before it is written (hides what the dashboard hides).
    redact: Callable[[Row, ExportSubject], Row] | None = None
    # Also (or only) written as files under `files/`.
    files: str | None = None
    # Its rows are in `files/` only (no `tables/<name>.json`).
    files_only: bool = False


@dataclass(frozen=True)
class Excluded:
    reason: str


def _organizations(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if not subject.organization_ids:
        return false()
    return table.c.organization_id.in_(subject.organization_ids)


def _own_user_id(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    """The user's own rows, in an account export only."""
    return table.c.user_id == subject.user_id if subject.account_export else false()


def _users(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if subject.account_export:
        return table.c.id == subject.user_id
    memberships = Base.metadata.tables["memberships"]
    members = select(memberships.c.user_id).where(_organizations(memberships, subject))
    return table.c.id.in_(members)


def _memberships(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if subject.account_export:
        return table.c.user_id == subject.user_id
    return _organizations(table, subject)


def _invitations(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if subject.account_export:  # the invitations sent to the user, not those sent to others
        return table.c.email == subject.email
    return _organizations(table, subject)


def _magic_links(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    return table.c.email == subject.email if subject.account_export else false()


def _audit_entries(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if subject.account_export:  # what the user did, and what was done to their account
        return or_(
            table.c.actor_user_id == subject.user_id,
            and_(table.c.target_type == "user", table.c.target_id == subject.user_id),
        )
    return _organizations(table, subject)


def _hide_staff(row: Row, subject: ExportSubject) -> Row:
    """Staff stay anonymous to customers, as in the dashboard's audit log."""
    if row.get("by_staff") and row.get("actor_user_id") != subject.user_id:
        return {**row, "actor_user_id": None, "ip": None, "user_agent": None}
    return row


def _hide_staff_reference(row: Row, subject: ExportSubject) -> Row:
    """A plan a staff member assigned names them by id in `reference`: kept from customers."""
    if row.get("source") == PlanChangeSource.staff:
        return {**row, "reference": None}
    return row


def _webhook_attempts(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    messages = Base.metadata.tables["webhook_messages"]
    return table.c.message_id.in_(select(messages.c.id).where(_organizations(messages, subject)))


def _data_exports(table: Table, subject: ExportSubject) -> ColumnElement[bool]:
    if subject.account_export:
        return table.c.user_id == subject.user_id
    return _organizations(table, subject)


_BY_ORGANIZATION = Exported(_organizations)

TABLES: dict[str, Exported | Excluded] = {
    # Accounts
    "users": Exported(
        _users,
        omit=frozenset({"password_hash"}),
        omit_for_organization=frozenset(
            {
                "is_staff",
                "email_verified_at",
                "last_login_at",
                "disabled_at",
                "deletion_requested_at",
            }
        ),
    ),
    "refresh_tokens": Exported(_own_user_id, omit=frozenset({"token_hash"})),
    "browser_sessions": Exported(_own_user_id, omit=frozenset({"token_hash"})),
    "magic_links": Exported(_magic_links, omit=frozenset({"token_hash"})),
    # Organizations
    "organizations": Exported(lambda table, subject: table.c.id.in_(subject.organization_ids)),
    "memberships": Exported(_memberships),
    "invitations": Exported(_invitations, omit=frozenset({"token_hash"})),
    "api_keys": Exported(_organizations, omit=frozenset({"key_hash"})),
    "vault_items": Exported(_organizations, omit=frozenset({"sealed"})),
    "audit_entries": Exported(_audit_entries, omit=frozenset({"email_hash"}), redact=_hide_staff),
    # Tasks and usage
    "tasks": _BY_ORGANIZATION,
    "task_attempts": _BY_ORGANIZATION,
    "task_log_chunks": Exported(
        _organizations, files="files/tasks/<task>/logs/attempt-<n>.<stream>.log", files_only=True
    ),
    "artifacts": Exported(
        _organizations,
        omit=frozenset({"storage_key"}),
        files="files/tasks/<task>/artifacts/<attempt>/<path>",
    ),
    "usage_records": _BY_ORGANIZATION,
    "storage_usage_days": _BY_ORGANIZATION,
    "quota_counters": _BY_ORGANIZATION,
    "quota_reservations": _BY_ORGANIZATION,
    # Schedules and webhooks
    "schedules": _BY_ORGANIZATION,
    "schedule_runs": _BY_ORGANIZATION,
    "webhook_endpoints": Exported(_organizations, omit=frozenset({"secret", "previous_secret"})),
    "webhook_messages": _BY_ORGANIZATION,
    "webhook_attempts": Exported(_webhook_attempts),
    # Billing
    "billing_customers": _BY_ORGANIZATION,
    "billing_subscriptions": _BY_ORGANIZATION,
    "plan_changes": Exported(_organizations, redact=_hide_staff_reference),
    "meter_reports": _BY_ORGANIZATION,
    "spend_caps": _BY_ORGANIZATION,
    "stripe_events": Excluded(
        "Stripe's webhook deliveries as the platform received them: no organization or person "
        "column, only Stripe's event ids; what they changed is in billing_subscriptions and "
        "plan_changes."
    ),
    "stripe_catalog_objects": Excluded(
        "The operator's price list as made on Stripe: the same for every customer."
    ),
    "outbox_emails": Excluded(
        "The e-mail relay's queue and its record of what was sent: bodies are sealed and carry "
        "sign-in and invitation links (credentials)."
    ),
    # Notifications
    "notification_preferences": Exported(_own_user_id),
    "notices_sent": Excluded(
        "Counters that keep a notice from going out twice (a quota threshold of a month, a "
        "user's task-failure e-mails in an hour): keys and counts, no content."
    ),
    # Privacy
    "data_exports": Exported(_data_exports, omit=frozenset({"storage_key"})),
}


def exported_tables() -> list[tuple[str, Exported]]:
    """The exported tables, in the order the archive lists them."""
    return [(name, rule) for name, rule in TABLES.items() if isinstance(rule, Exported)]


def unclassified_tables() -> set[str]:
    """Tables of the schema no rule decides on (a test keeps this empty)."""
    return set(Base.metadata.tables) - set(TABLES)
