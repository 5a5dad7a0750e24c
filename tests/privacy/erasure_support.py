"""A customer with data in every corner of the platform, and a scan for what names them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.context import AppContext
from saassy.email.outbox import queue_email
from saassy.kit.time import utcnow
from saassy.models import (
    Artifact,
    Invitation,
    Membership,
    PlanChange,
    PlanChangeSource,
    QuotaCounter,
    Role,
    Schedule,
    Task,
    TaskAttempt,
    TaskLogChunk,
    TaskStatus,
    UsageRecord,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from saassy.models.base import Base
from saassy.storage.keys import artifact_key


@dataclass
class Seeded:
    """What was placed for one customer: strings no other data contains."""

    canary: str
    organization_ids: list[uuid.UUID] = field(default_factory=list)
    task_ids: list[uuid.UUID] = field(default_factory=list)


async def seed_organization(
    ctx: AppContext,
    session: AsyncSession,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    canary: str,
    tmp: Path,
    *,
    status: TaskStatus = TaskStatus.succeeded,
) -> uuid.UUID:
    """A finished task with an attempt, logs, usage, an artifact (stored), a schedule, a
    webhook endpoint with a delivered message, a quota counter: each holding `canary`."""
    now = utcnow()
    task = Task(
        organization_id=organization_id,
        type="echo",
        status=status,
        input={"note": canary},
        result={"echo": canary} if status is TaskStatus.succeeded else None,
        timeout_s=10,
        run_after=now,
        submitted_by_user_id=user_id,
        finished_at=now if status is TaskStatus.succeeded else None,
    )
    session.add(task)
    await session.flush()
    session.add_all(
        [
            TaskAttempt(
                task_id=task.id,
                organization_id=organization_id,
                number=1,
                status="succeeded",
                error=canary,
            ),
            TaskLogChunk(
                task_id=task.id,
                organization_id=organization_id,
                attempt_number=1,
                seq=0,
                stream="stdout",
                data=f"printed {canary}\n",
            ),
            UsageRecord(
                organization_id=organization_id,
                task_id=task.id,
                task_type="echo",
                attempt_number=1,
                metric="cpu_seconds",
                quantity=1.0,
                recorded_at=now,
            ),
            QuotaCounter(
                organization_id=organization_id,
                metric=f"m-{task.id.hex[:12]}",
                period_start=now.date(),
                used=1,
            ),
        ]
    )
    source = tmp / f"artifact-{uuid.uuid4().hex}.txt"
    source.write_text(f"artifact of {canary}\n")
    key = artifact_key(organization_id, task.id, 1, f"out/{canary}.txt")
    stored = await ctx.storage.put(key, source)
    session.add(
        Artifact(
            task_id=task.id,
            organization_id=organization_id,
            attempt_number=1,
            path=f"out/{canary}.txt",
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            content_type="text/plain",
            storage_key=key,
        )
    )
    session.add(
        Schedule(
            organization_id=organization_id,
            name=f"nightly {canary}",
            task_type="echo",
            input={"note": canary},
            interval_s=3600,
            next_run_at=now,
            run_as_user_id=user_id,
        )
    )
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=f"https://hooks.example.com/{canary}",
        event_types=[],
        secret="sealed",
    )
    session.add(endpoint)
    await session.flush()
    message = WebhookMessage(
        organization_id=organization_id,
        endpoint_id=endpoint.id,
        event_type="task.succeeded",
        event={"note": canary},
    )
    session.add(message)
    await session.flush()
    session.add(
        WebhookAttempt(
            message_id=message.id,
            number=1,
            succeeded=True,
            status_code=200,
            duration_ms=3,
            response_body=f"ok {canary}",
        )
    )
    await session.flush()
    return task.id


async def seed_links_to_others(
    ctx: AppContext,
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    email: str,
    own_organization: uuid.UUID,
    shared_organization: uuid.UUID,
    canary: str,
) -> None:
    """What names the user in another's organization: membership, an audit entry as actor,
    a staff plan change, a pending invitation they sent, e-mail about them to someone else."""
    session.add(Membership(organization_id=shared_organization, user_id=user_id, role=Role.member))
    await record(
        session,
        AuditAction.member_role_changed,
        Actor.user(user_id, Origin.of("203.0.113.77", f"Browser {canary}")),
        organization_id=shared_organization,
        target=Target(TargetType.user, user_id),
        details={"role": "member"},
    )
    session.add(
        PlanChange(
            organization_id=shared_organization,
            from_plan="free",
            to_plan="pro",
            source=PlanChangeSource.staff,
            reference=str(user_id),
            changed_at=utcnow(),
        )
    )
    session.add(
        Invitation(
            organization_id=own_organization,
            email="friend@example.net",
            role=Role.member,
            token_hash=uuid.uuid4().hex,
            invited_by_user_id=user_id,
            expires_at=utcnow(),
        )
    )
    await queue_email(
        session,
        ctx.settings,
        to="someone@example.net",
        subject="A note",
        body=f"{email} shared something with you",
    )
    await session.flush()


def _texts(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


async def database_hits(session: AsyncSession, needles: list[str]) -> list[str]:
    """`table.column: needle` for every value in every table that contains a needle (every
    column: text, JSON, blobs, ids, compared as text, case-insensitively)."""
    lowered = [needle.lower() for needle in needles]
    hits = []
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).mappings().all()
        for row in rows:
            for column, value in row.items():
                text = _texts(value).lower()
                for needle in lowered:
                    if needle in text or needle.replace("-", "") in text.replace("-", ""):
                        hits.append(f"{table.name}.{column}: {needle}")
    return hits


def directory_hits(root: Path, needles: list[str]) -> list[str]:
    """`path: needle` for every file under `root` whose name or bytes contain a needle."""
    hits = []
    if not root.exists():
        return hits
    for path in root.rglob("*"):
        name = str(path.relative_to(root)).lower()
        data = path.read_bytes().lower() if path.is_file() else b""
        for needle in needles:
            low = needle.lower()
            if low in name or low.encode() in data:
                hits.append(f"{path}: {needle}")
    return hits
