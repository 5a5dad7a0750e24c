"""The events an endpoint can receive, and how a task's end becomes messages in the outbox.

The messages are written in the transaction that gives the task its final status, so an event
goes out if and only if that status commits. The body carries identity, times and a link; never
the task's input, result or error text, which may hold the customer's data.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.after_commit import after_commit
from saassy.models import TaskStatus, WebhookMessage
from saassy.webhooks.repository import WebhookMessageRepository


class WebhookEventType(StrEnum):
    task_succeeded = "task.succeeded"
    task_failed = "task.failed"
    task_canceled = "task.canceled"
    task_timed_out = "task.timed_out"


EVENT_FOR_STATUS = {
    TaskStatus.succeeded: WebhookEventType.task_succeeded,
    TaskStatus.failed: WebhookEventType.task_failed,
    TaskStatus.canceled: WebhookEventType.task_canceled,
    TaskStatus.timed_out: WebhookEventType.task_timed_out,
}


# Sent on request to one endpoint, whatever types it takes (not one an endpoint subscribes to).
TEST_EVENT_TYPE = "webhook.test"


class WebhookMessagesQueued:
    """After the commit: the relay delivers now rather than on its next poll."""


WEBHOOK_MESSAGES_QUEUED = WebhookMessagesQueued()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


async def queue_task_event(
    session: AsyncSession, task_id: uuid.UUID, organization_id: uuid.UUID, status: TaskStatus
) -> int:
    """A message for each enabled endpoint of the organization that takes this event; how many.

    Called after the task's final UPDATE, in its transaction: the row is read back as written.
    """
    event_type = EVENT_FOR_STATUS[status]
    repository = WebhookMessageRepository(session)
    endpoints = await repository.enabled_endpoints_of(organization_id)
    subscribed = [eid for eid, types in endpoints if not types or event_type.value in types]
    if not subscribed:
        return 0
    row = await repository.task_facts(task_id)
    event = task_event(event_type, task_id, status, row)
    for endpoint_id in subscribed:
        session.add(
            WebhookMessage(
                organization_id=organization_id,
                endpoint_id=endpoint_id,
                event_type=event_type.value,
                event=event,
                next_attempt_at=row["finished_at"],
            )
        )
    await session.flush()
    after_commit(session, WEBHOOK_MESSAGES_QUEUED)
    return len(subscribed)


def task_event(
    event_type: WebhookEventType, task_id: uuid.UUID, status: TaskStatus, row: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": event_type.value,
        "timestamp": _iso(row["finished_at"]),
        "data": {
            "id": str(task_id),
            "type": row["type"],
            "status": status.value,
            "created_at": _iso(row["created_at"]),
            "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
            "attempts": row["attempt_count"],
            "error_code": row["error_code"] if status is not TaskStatus.succeeded else None,
        },
    }


def test_event(endpoint_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """What a test send carries: which endpoint it was sent to, and nothing else."""
    return {
        "type": TEST_EVENT_TYPE,
        "timestamp": _iso(now),
        "data": {"endpoint_id": str(endpoint_id)},
    }


def render_body(event: dict[str, Any], base_url: str) -> bytes:
    """The bytes sent and signed: the stored event with its links made absolute. The same
    event and base URL give the same bytes, so every attempt of a message sends one body."""
    if not str(event["type"]).startswith("task."):
        return json.dumps(event, separators=(",", ":")).encode()
    task_id = event["data"]["id"]
    base = base_url.rstrip("/")
    data = {
        **event["data"],
        "links": {
            "api": f"{base}/api/v1/tasks/{task_id}",
            "dashboard": f"{base}/app/tasks/{task_id}",
        },
    }
    return json.dumps({**event, "data": data}, separators=(",", ":")).encode()
