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
    member_invited = "member.invited"
    member_removed = "member.removed"
    member_role_changed = "member.role_changed"
    plan_changed = "plan.changed"
    plan_overrides_changed = "plan.overrides_changed"
    secret_set = "secret.set"  # noqa: S105 - an action code, not a secret
    secret_deleted = "secret.deleted"  # noqa: S105


class TargetType(StrEnum):
    user = "user"
    api_key = "api_key"
    invitation = "invitation"
    secret = "secret"  # noqa: S105
    organization = "organization"
