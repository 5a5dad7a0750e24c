"""The database's numbers, read when Prometheus scrapes: queue depth, waits, outbox backlog.

A few aggregates over queued rows (the staff's system page reads the same ones), so a scrape
costs the same however deep the queue; no process keeps them in memory, where each replica
would hold its own stale copy. The breakdown by organization and task type names only the
deepest pairs; the rest are summed under `other`, so the series stay bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.admin.queue import OutboxBacklog, QueueDepth, QueueRepository
from saassy.kit.time import as_utc

MOST_SERIES = 100
OTHER = "other"  # never an organization id, which is a UUID


@dataclass(frozen=True)
class QueueSnapshot:
    now: datetime
    depth: QueueDepth
    breakdown: Sequence[tuple[uuid.UUID, str, int]]
    live: int
    email_outbox: OutboxBacklog


async def read_queue(session: AsyncSession, now: datetime) -> QueueSnapshot:
    queue = QueueRepository(session)
    return QueueSnapshot(
        now=now,
        depth=await queue.depth(now),
        breakdown=await queue.by_organization_and_type(MOST_SERIES),
        live=await queue.live(),
        email_outbox=await queue.outbox(),
    )


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - as_utc(since)).total_seconds()) if since is not None else 0.0


class QueueCollector(Collector):
    """Yields one snapshot's gauges; None when the database did not answer (`up` says so)."""

    def __init__(self, snapshot: QueueSnapshot | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "saassy_database_up", "1 when this scrape could read the database's numbers."
        )
        up.add_metric([], 1 if self.snapshot else 0)
        yield up
        if self.snapshot is None:
            return
        yield from self._queue(self.snapshot)
        yield from self._outbox(self.snapshot)

    def _queue(self, snap: QueueSnapshot) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "saassy_queued_tasks",
            f"Queued tasks by organization and task type (the {MOST_SERIES} deepest; "
            "the rest under organization and task_type 'other').",
            labels=["organization", "task_type"],
        )
        for organization, task_type, count in snap.breakdown:
            queued.add_metric([str(organization), task_type], count)
        rest = snap.depth.queued - sum(count for _, _, count in snap.breakdown)
        if rest > 0:
            queued.add_metric([OTHER, OTHER], rest)
        yield queued
        yield _gauge("saassy_queued_tasks_due", "Queued tasks due now.", snap.depth.due)
        yield _gauge(
            "saassy_oldest_queued_task_age_seconds",
            "Age of the oldest queued task (0 when none is queued).",
            _age(snap.now, snap.depth.oldest_created_at),
        )
        yield _gauge(
            "saassy_oldest_due_task_wait_seconds",
            "How long the longest-waiting due task has waited for dispatch since it was due.",
            _age(snap.now, snap.depth.oldest_due_at),
        )
        yield _gauge(
            "saassy_live_attempts",
            "Attempts dispatched or running, across every executor.",
            snap.live,
        )

    def _outbox(self, snap: QueueSnapshot) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "saassy_outbox_backlog",
            "Outbox messages not sent: pending (will be tried again) or given_up.",
            labels=["outbox", "state"],
        )
        backlog.add_metric(["email", "pending"], snap.email_outbox.pending)
        backlog.add_metric(["email", "given_up"], snap.email_outbox.given_up)
        yield backlog
        oldest = GaugeMetricFamily(
            "saassy_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox message (0 when none).",
            labels=["outbox"],
        )
        oldest.add_metric(["email"], _age(snap.now, snap.email_outbox.oldest_pending_at))
        yield oldest


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
