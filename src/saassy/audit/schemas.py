"""Answers of the audit log endpoints: ids and codes, never an address or a secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from saassy.models import AuditEntry


class AuditActorOut(BaseModel):
    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    staff: bool = Field(description="Acting as the operator's staff, not as a member.")


class AuditTargetOut(BaseModel):
    type: str
    id: uuid.UUID


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    time: datetime
    action: str = Field(examples=["api_key.created"], description="docs/audit.md lists them.")
    actor: AuditActorOut
    organization_id: uuid.UUID | None
    target: AuditTargetOut | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry, *, for_customer: bool = False) -> AuditEntryOut:
        """`for_customer`: the operator's staff stay anonymous (no user id, address or agent)."""
        hide = for_customer and entry.by_staff
        target = (
            AuditTargetOut(type=entry.target_type, id=entry.target_id)
            if entry.target_type is not None and entry.target_id is not None
            else None
        )
        return cls(
            id=entry.id,
            time=entry.created_at,
            action=entry.action,
            actor=AuditActorOut(
                user_id=None if hide else entry.actor_user_id,
                api_key_id=entry.actor_api_key_id,
                staff=entry.by_staff,
            ),
            organization_id=entry.organization_id,
            target=target,
            ip=None if hide else entry.ip,
            user_agent=None if hide else entry.user_agent,
            details=entry.details,
        )
