"""The dispatcher: claims due queued tasks for an executor, fairly across organizations.

Each round finds the organizations with queued tasks in id order, resuming after the last one
served, up to one per free slot, and shares the free slots out evenly among them (priority, then
FIFO, inside one), skipping organizations at their plan's concurrency; slots one organization
cannot use go to the others. Reserved slots go to organizations with nothing running, then to
those running less than their fair share (the slots over the organizations with work), out of
turn: the ring's turn stays where the free slots left it. When the organizations a round looked
at could use none of what was left (at their limit, or nothing due yet), the next round starts
after them, and a dispatch runs a few such rounds, so a crowd of them cannot hide one behind it
from a slot sitting free. A round is four statements whatever it serves (the organizations,
their due tasks and counts, the claim, the attempts; a fifth counts the organizations with work
when the reserve needs it), each made of index seeks and ranges, so its cost does not grow with
the queue's depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.executor import AttemptRef, Executor
from saassy.dispatch.repository import Claimed, DispatchRepository
from saassy.dispatch.wakeup import Wakeup
from saassy.events.bus import EventBus, publish_status
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import OutageWatch, is_database_outage, probe
from saassy.kit.time import as_utc, utcnow
from saassy.models import TaskStatus
from saassy.observability import metrics
from saassy.plans.catalog import Catalog
from saassy.plans.service import effective_plan

log = structlog.get_logger(__name__)
RESERVE_LOOKAHEAD = 4  # organizations looked at per reserved slot
# Rounds one dispatch may run when a round's organizations could not use what was free (all at
# their limit, or their tasks not due yet): each looks at the organizations after the last.
ROUNDS_PER_DISPATCH = 4


@dataclass
class _Organization:
    """One organization during a round."""

    id: uuid.UUID
    room: int  # what its plan's concurrency still allows
    active: int  # dispatched or running when the round began
    claimed: int = 0
    due: list[uuid.UUID] = field(default_factory=list)  # its due tasks, in claim order


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        executor: Executor,
        events: EventBus,
        *,
        wakeup: Wakeup | None = None,
        lease: timedelta = timedelta(seconds=15),
        poll_s: float = 0.5,
        adopt_every_s: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.catalog = catalog
        self.executor = executor
        self.events = events
        self.wakeup = wakeup or Wakeup()
        self.lease = lease
        self.poll_s = poll_s
        self.adopt_every_s = adopt_every_s
        self._cursor: uuid.UUID | None = None
        # Organizations the last round saw that can take no reserved slot until one of their
        # tasks ends (which wakes the dispatcher for anything): at their plan's limit, or
        # running half the slots or more.
        self._crowded: frozenset[uuid.UUID] = frozenset()
        self._loop = BackgroundLoop(self.run, "dispatcher")

    async def dispatch_once(self) -> list[Claimed]:
        """Claim what the executor has room for and hand it over; returns the claims."""
        claims: list[Claimed] = []
        for _ in range(ROUNDS_PER_DISPATCH):
            free, reserved = self.executor.free_slots, self.executor.free_reserved_slots
            if free + reserved <= 0:
                break
            cursor = self._cursor
            async with self.sessionmaker() as session, session.begin():
                claimed, looked_past = await self._claim_round(
                    DispatchRepository(session), free, reserved
                )
            await self._hand_over(claimed)
            claims += claimed
            if not looked_past or self._cursor == cursor:
                break
        return claims

    async def _hand_over(self, claims: list[Claimed]) -> None:
        claimed_at = utcnow()
        metrics.tasks_claimed(
            [(claimed_at - as_utc(c.task.run_after)).total_seconds() for c in claims]
        )
        statuses = [TaskStatus.dispatched]
        if self.executor.starts_on_claim:
            statuses.append(TaskStatus.running)
        for claim in claims:
            ref = AttemptRef(
                task_id=claim.task_id,
                organization_id=claim.organization_id,
                attempt_number=claim.attempt_number,
                executor_id=self.executor.executor_id,
            )
            await self.executor.submit(ref, claim.task)
            for status in statuses:
                await publish_status(
                    self.events, claim.organization_id, claim.task_id, status, claim.attempt_number
                )

    async def _claim_round(
        self, repo: DispatchRepository, free: int, reserved: int
    ) -> tuple[list[Claimed], bool]:
        """The round's claims, and whether it moved the cursor past organizations that could
        use none of what was free (another round may find some further on)."""
        now = utcnow()
        organizations, last_looked = await self._organizations(repo, free, reserved, now)
        chosen: list[uuid.UUID] = []

        def take(served: _Organization, wanted: int, *, in_turn: bool = True) -> int:
            got = served.due[:wanted]
            del served.due[:wanted]
            served.room -= len(got)
            served.claimed += len(got)
            chosen.extend(got)
            if in_turn and got:
                self._cursor = served.id
            return len(got)

        # Even shares of the free slots; what one cannot use goes round again to the others.
        pending = list(organizations)
        while pending and len(chosen) < free:
            share = -(-(free - len(chosen)) // len(pending))  # ceil: the first in turn get more
            for served in list(pending):
                if len(chosen) >= free:
                    break
                wanted = min(share, served.room, free - len(chosen))
                got = take(served, wanted) if wanted > 0 else 0
                if got < wanted or served.room <= 0:
                    pending.remove(served)  # ran dry or at its limit
        free_left = free - len(chosen)
        # The reserve: one slot each, for organizations that got none above and run less than
        # their fair share, those with nothing running first; so a flood from one organization
        # never makes another wait for a slot to free, whether or not it has a task running.
        # No fair share is above half the slots (two organizations at least): one running that
        # many needs no count of the others, the query a saturated round would otherwise run.
        most_fair = (self.executor.parallelism + self.executor.reserved_slots) // 2
        wanting = [
            s
            for s in organizations
            if s.claimed == 0 and s.room > 0 and s.due and s.active < most_fair
        ]
        fair: int | None = None
        for served in sorted(wanting, key=lambda s: s.active):
            if reserved <= 0:
                break
            if served.active > 0 and fair is None:
                fair = await self._fair_share(repo, organizations)
            if served.active == 0 or (fair is not None and served.active < fair):
                # Out of turn: the organizations it was looked past keep their turn.
                reserved -= take(served, 1, in_turn=False)
        # Every organization looked at was offered what it could take and some is left (they
        # are at their limit, or their tasks are not due): the next round starts after them,
        # or those behind them would wait, slots free, until one of theirs ended.
        looked_past = last_looked is not None and (free_left > 0 or (free == 0 and reserved > 0))
        if looked_past:
            self._cursor = last_looked
        claims = await repo.claim(
            chosen,
            executor_id=self.executor.executor_id,
            now=now,
            lease=self.lease,
            running=self.executor.starts_on_claim,
        )
        # Counted from the claims: a task canceled meanwhile was chosen but not claimed.
        taken = Counter(claim.organization_id for claim in claims)
        self._crowded = frozenset(
            s.id
            for s in organizations
            if s.room + s.claimed - taken[s.id] <= 0 or s.active + taken[s.id] >= most_fair
        )
        return claims, looked_past

    async def _fair_share(
        self, repo: DispatchRepository, organizations: list[_Organization]
    ) -> int:
        """The executor's slots (the reserve included) over the organizations with work: those
        with tasks dispatched or running anywhere, and those of this round with only queued ones;
        never counted as fewer than two, so an organization alone keeps the reserve free for the
        next to come. One at or above it (a flood) never takes the reserve."""
        waiting = sum(1 for served in organizations if served.active == 0)
        with_work = await repo.organizations_running() + waiting
        slots = self.executor.parallelism + self.executor.reserved_slots
        return slots // max(2, with_work)

    async def _organizations(
        self, repo: DispatchRepository, free: int, reserved: int, now: datetime
    ) -> tuple[list[_Organization], uuid.UUID | None]:
        """Up to one organization per free slot with due tasks, in id order after the cursor,
        locked, with their room under their plan's concurrency and their due tasks; and the
        last one looked at, unless they were all there are."""
        # The reserve looks a few further round: the next in turn may well be the flood.
        window = free + reserved * RESERVE_LOOKAHEAD
        locked = await repo.queued_organizations(self._cursor, window)
        last_looked = locked[-1].id if len(locked) == window else None
        limits = {
            organization.id: effective_plan(self.catalog, organization).max_concurrent_tasks
            for organization in locked
        }
        # The most one could get: the free slots, or a reserved one (if it has none running).
        most = free or min(reserved, 1)
        due = await repo.due_tasks({org: min(limit, most) for org, limit in limits.items()}, now)
        organizations = [
            _Organization(
                organization_id,
                room=max(0, limit - due[organization_id].active),
                active=due[organization_id].active,
                due=due[organization_id].task_ids,
            )
            for organization_id, limit in limits.items()
            if organization_id in due
        ]
        return organizations, last_looked

    async def run(self) -> None:
        """Dispatch until cancelled: on every wake-up, else every `poll_s`; adopt now and then."""
        adopted_at = 0.0
        polled_at = time.monotonic()  # the last round: a skipped wake-up never delays the next
        outage = OutageWatch("dispatcher")
        while True:
            wait_s = self.poll_s
            try:
                if outage.out:
                    await probe(self.sessionmaker)
                    # Back: leases ran on while nobody could renew them. Adopt no sooner than
                    # a lease from now, when the executors that lived through the outage have
                    # renewed theirs (every third of a lease) and only orphans are left.
                    adopted_at = time.monotonic() + self.lease.total_seconds() - self.adopt_every_s
                if time.monotonic() - adopted_at >= self.adopt_every_s:
                    adopted_at = time.monotonic()
                    if await self.executor.adopt():
                        self.wakeup.set()
                woken_for = self.wakeup.take()
                # Counts before claiming: a wake-up for an attempt that just ended finds its
                # slot free in this round, not the next.
                await self.executor.heartbeat()
                # What only a poll finds (a retry come due, another process's submission) must
                # not wait on a flood whose skipped wake-ups would each restart the poll's timer.
                poll_in = polled_at + self.poll_s - time.monotonic()
                if poll_in > 0 and self._cannot_serve(woken_for):
                    claims = []
                    wait_s = poll_in
                else:
                    claims = await self.dispatch_once()
                    polled_at = time.monotonic()
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                claims = []
                if is_database_outage(exc):  # said once; tried again, less and less often
                    wait_s = outage.failed(exc)
                else:
                    log.exception("dispatch round failed")
            if claims and self.executor.free_slots > 0:
                # More may be due right away; but first the attempts just handed over start:
                # on SQLite a round runs on the loop without yielding, and this one would hold
                # their sandboxes back by its ~1 ms.
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self.wakeup.wait()

    def _cannot_serve(self, woken_for: frozenset[uuid.UUID] | None) -> bool:
        """Whether a round now could claim nothing new: woken only by submissions of crowded
        organizations, with only reserved slots free."""
        if woken_for is None or self.executor.free_slots > 0:
            return False
        return woken_for <= self._crowded

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
