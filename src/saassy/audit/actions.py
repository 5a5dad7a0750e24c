"""What the audit log records: one code per kind of action.

Codes are stored as text and never renamed or reused; new kinds of action (key rotation, data
export, account deletion) add members here and nothing else changes.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    signed_in = "auth.signed_in"
    sign_in_failed = "auth.sign_in_failed"
    api_key_created = "api_key.created"
    api_key_revoked = "api_key.revoked"
    api_key_rotated = "api_key.rotated"
    member_invited = "member.invited"
    member_removed = "member.removed"
    member_role_changed = "member.role_changed"
    plan_changed = "plan.changed"
    plan_overrides_changed = "plan.overrides_changed"
    secret_set = "secret.set"  # noqa: S105 - an action code, not a secret
    secret_deleted = "secret.deleted"  # noqa: S105
    webhook_endpoint_created = "webhook_endpoint.created"
    webhook_endpoint_updated = "webhook_endpoint.updated"
    webhook_endpoint_deleted = "webhook_endpoint.deleted"
    webhook_endpoint_secret_rotated = "webhook_endpoint.secret_rotated"  # noqa: S105
    webhook_endpoint_disabled = "webhook_endpoint.disabled"
    data_export_requested = "data_export.requested"
    data_export_downloaded = "data_export.downloaded"
    webhook_endpoint_test_sent = "webhook_endpoint.test_sent"
    webhook_message_redelivered = "webhook_message.redelivered"
    # The receipt of an erased account: its pseudonym, when, and how much went (no address).
    account_deleted = "account.deleted"
    schedule_created = "schedule.created"
    schedule_updated = "schedule.updated"
    schedule_paused = "schedule.paused"
    schedule_resumed = "schedule.resumed"
    schedule_deleted = "schedule.deleted"


class TargetType(StrEnum):
    user = "user"
    api_key = "api_key"
    invitation = "invitation"
    secret = "secret"  # noqa: S105
    organization = "organization"
    webhook_endpoint = "webhook_endpoint"
    data_export = "data_export"
    schedule = "schedule"


# How the dashboard names each action; every member has one (a test checks).
ACTION_LABELS: dict[AuditAction, str] = {
    AuditAction.signed_in: "Signed in",
    AuditAction.sign_in_failed: "Sign-in failed",
    AuditAction.api_key_created: "API key created",
    AuditAction.api_key_revoked: "API key revoked",
    AuditAction.api_key_rotated: "API key rotated",
    AuditAction.member_invited: "Member invited",
    AuditAction.member_removed: "Member removed",
    AuditAction.member_role_changed: "Role changed",
    AuditAction.plan_changed: "Plan changed",
    AuditAction.plan_overrides_changed: "Plan limits changed",
    AuditAction.secret_set: "Secret set",
    AuditAction.secret_deleted: "Secret deleted",
    AuditAction.webhook_endpoint_created: "Webhook endpoint created",
    AuditAction.webhook_endpoint_updated: "Webhook endpoint changed",
    AuditAction.webhook_endpoint_deleted: "Webhook endpoint deleted",
    AuditAction.webhook_endpoint_secret_rotated: "Webhook secret rotated",
    AuditAction.webhook_endpoint_disabled: "Webhook endpoint disabled",
    AuditAction.data_export_requested: "Data export requested",
    AuditAction.data_export_downloaded: "Data export downloaded",
    AuditAction.webhook_endpoint_test_sent: "Webhook test event sent",
    AuditAction.webhook_message_redelivered: "Webhook message sent again",
    AuditAction.account_deleted: "Account deleted",
    AuditAction.schedule_created: "Schedule created",
    AuditAction.schedule_updated: "Schedule changed",
    AuditAction.schedule_paused: "Schedule paused",
    AuditAction.schedule_resumed: "Schedule resumed",
    AuditAction.schedule_deleted: "Schedule deleted",
}
