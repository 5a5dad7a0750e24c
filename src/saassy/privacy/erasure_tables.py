"""What deleting an account does to each table: every table of the schema is classified here,
and a test fails when one is added without being classified.

- `deleted_by_user`: rows whose column holds the user's id are deleted.
- `cleared`: columns naming the user in rows that belong to someone else (an organization that
  survives them) are set to NULL: the row stays, the link to the person goes.
- `deleted_by_organization`: rows of an organization that goes with the account are deleted.
- `special`: handled by name in erasure_jobs.py (the user row itself, rows found by address,
  the audit log's pseudonyms, rows reached through a parent).
- `kept`: nothing of the user is in it; the reason says why it stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableErasure:
    deleted_by_user: tuple[str, ...] = ()
    cleared: tuple[str, ...] = ()
    deleted_by_organization: str | None = None
    special: str = ""
    kept: str = ""
    notes: dict[str, str] = field(default_factory=dict)


ERASURE: dict[str, TableErasure] = {
    "users": TableErasure(special="the row is deleted last, once everything naming it is gone"),
    "refresh_tokens": TableErasure(deleted_by_user=("user_id",)),
    "browser_sessions": TableErasure(
        deleted_by_user=("user_id",),
        special="other users' sessions pointing at an erased "
        "organization lose that choice (organization_id set to NULL)",
    ),
    "magic_links": TableErasure(
        special="deleted by address: sign-in, reset, verification and "
        "deletion codes sent to the user's e-mail"
    ),
    "memberships": TableErasure(
        deleted_by_user=("user_id",), deleted_by_organization="organization_id"
    ),
    "invitations": TableErasure(
        deleted_by_organization="organization_id",
        special="invitations to the user's address and those the user sent are deleted",
    ),
    "organizations": TableErasure(
        special="the organizations whose only member is the user are "
        "deleted, after every row that belongs to them"
    ),
    "api_keys": TableErasure(
        cleared=("created_by_user_id",), deleted_by_organization="organization_id"
    ),
    "audit_entries": TableErasure(
        special="pseudonymized: the user's id becomes a random UUID recorded nowhere, their IP, "
        "user agent and address hash are cleared; an erased organization's log is deleted"
    ),
    "billing_customers": TableErasure(
        deleted_by_organization="organization_id",
        notes={"stripe": "the Stripe customer and its invoices stay at Stripe (tax law)"},
    ),
    "billing_subscriptions": TableErasure(
        deleted_by_organization="organization_id",
        notes={"stripe": "the subscription is canceled at Stripe first"},
    ),
    "stripe_events": TableErasure(kept="Stripe event ids and types only; no personal data"),
    "plan_changes": TableErasure(
        deleted_by_organization="organization_id",
        special="`reference` naming a staff user by id is pseudonymized",
    ),
    "stripe_catalog_objects": TableErasure(kept="the operator's products and prices"),
    "meter_reports": TableErasure(deleted_by_organization="organization_id"),
    "spend_caps": TableErasure(deleted_by_organization="organization_id"),
    "outbox_emails": TableErasure(
        special="deleted when addressed to the user or when the subject or the (sealed) body "
        "names their address"
    ),
    "quota_counters": TableErasure(deleted_by_organization="organization_id"),
    "quota_reservations": TableErasure(deleted_by_organization="organization_id"),
    "schedules": TableErasure(
        cleared=("run_as_user_id",), deleted_by_organization="organization_id"
    ),
    "schedule_runs": TableErasure(deleted_by_organization="organization_id"),
    "tasks": TableErasure(
        cleared=("submitted_by_user_id",), deleted_by_organization="organization_id"
    ),
    "task_attempts": TableErasure(deleted_by_organization="organization_id"),
    "usage_records": TableErasure(deleted_by_organization="organization_id"),
    "storage_usage_days": TableErasure(deleted_by_organization="organization_id"),
    "task_log_chunks": TableErasure(deleted_by_organization="organization_id"),
    "artifacts": TableErasure(
        deleted_by_organization="organization_id",
        notes={"storage": "every object under `{organization}/` is deleted from storage"},
    ),
    "vault_items": TableErasure(deleted_by_organization="organization_id"),
    "webhook_endpoints": TableErasure(deleted_by_organization="organization_id"),
    "webhook_messages": TableErasure(deleted_by_organization="organization_id"),
    "webhook_attempts": TableErasure(
        special="deleted through their message, before the erased organizations' messages"
    ),
    "notification_preferences": TableErasure(deleted_by_user=("user_id",)),
    "notices_sent": TableErasure(
        special="counters keyed by the user's id (task-failure e-mails in an hour) or an erased "
        "organization's id (quota thresholds) are deleted"
    ),
    "data_exports": TableErasure(
        deleted_by_user=("user_id",),
        deleted_by_organization="organization_id",
        notes={"storage": "the archives of the user's and the erased organizations' exports"},
    ),
}
