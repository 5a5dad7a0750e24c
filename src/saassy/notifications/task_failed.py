"""The opt-in e-mail when a task ends failed or timed out, to whoever submitted it.

Written in the transaction of the task's final status (it goes out if and only if that commits).
A failure costs one query, which finds nobody unless the submitter opted in; a success costs
nothing. At most `PER_HOUR` such e-mails go to one user in a clock hour: the rest are counted,
and the first e-mail of the next hour in which a task fails says how many were left out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.models import Schedule, Task, TaskStatus
from saassy.notifications.kinds import NotificationKind, why_footer
from saassy.notifications.repository import NoticeRepository, PreferenceRepository
from saassy.schedules.repository import ScheduleRunRepository

PER_HOUR = 10
FAILED = frozenset({TaskStatus.failed, TaskStatus.timed_out})
MAX_ERROR_CHARS = 500


def hour_key(user_id: uuid.UUID, hour: datetime) -> str:
    return f"task_failed:{user_id}:{hour:%Y-%m-%dT%H}"


@dataclass(frozen=True)
class TaskFailureNotices:
    """What the engine holds to e-mail task failures: the settings the outbox needs."""

    settings: Settings

    async def task_ended(
        self,
        session: AsyncSession,
        task: Task,
        status: TaskStatus,
        *,
        error_code: str | None,
        error: str | None,
        now: datetime,
    ) -> bool:
        """Queue the e-mail if the task failed and its submitter wants it; whether one was."""
        if status not in FAILED:
            return False
        recipient = await PreferenceRepository(session).submitter_wanting(
            task.organization_id,
            task.submitted_by_user_id,
            task.submitted_by_api_key_id,
            NotificationKind.task_failed,
        )
        if recipient is None:
            return False
        notices = NoticeRepository(session)
        hour = now.replace(minute=0, second=0, microsecond=0)
        sent = await notices.count(hour_key(recipient.user_id, hour), now)
        if sent > PER_HOUR:
            return False
        left_out = 0
        if sent == 1:
            earlier = await notices.count_of(hour_key(recipient.user_id, hour - timedelta(hours=1)))
            left_out = max(0, earlier - PER_HOUR)
        schedule = await ScheduleRunRepository(session).schedule_of_task(task.id)
        subject, body = self._message(task, status, error_code, error, sent, left_out, schedule)
        await queue_email(session, self.settings, to=recipient.email, subject=subject, body=body)
        return True

    def _message(
        self,
        task: Task,
        status: TaskStatus,
        error_code: str | None,
        error: str | None,
        sent: int,
        left_out: int,
        schedule: Schedule | None,
    ) -> tuple[str, str]:
        settings = self.settings
        service = settings.catalog.branding.name
        ended = "timed out" if status is TaskStatus.timed_out else "failed"
        link_base = settings.base_url.rstrip("/")
        link = f"{link_base}/app/tasks/{task.id}"
        summary = (error or "").strip()
        if len(summary) > MAX_ERROR_CHARS:
            summary = summary[:MAX_ERROR_CHARS] + "…"
        lines = [
            f"Your {task.type} task {ended}."
            if schedule is None
            else f"A {task.type} task of the schedule {schedule.name!r} {ended}.",
            "",
            f"Task: {task.id}",
            f"Type: {task.type}",
            f"Error code: {error_code or status.value}",
            f"Error: {summary or '(none given)'}",
            "",
            f"Its logs and attempts: {link}",
        ]
        if left_out:
            lines += [
                "",
                f"In the previous hour, {left_out:,} more of your tasks failed without an e-mail.",
            ]
        if sent == PER_HOUR:
            lines += [
                "",
                f"This is the {PER_HOUR}th failure e-mail this hour: further failures this hour "
                "are counted, not e-mailed; the Tasks page lists them all.",
            ]
        if schedule is not None:
            lines.insert(3, f"Schedule: {schedule.name} ({link_base}/app/schedules/{schedule.id})")
            reason = "the schedule that submitted this task runs as you"
        elif task.submitted_by_user_id is not None:
            reason = "you submitted this task"
        else:
            reason = "an API key you created submitted this task"
        body = "\n".join(lines) + why_footer(
            settings.base_url, reason, NotificationKind.task_failed
        )
        return f"{service}: task {task.type} {ended} ({str(task.id)[:8]})", body
