"""Watching a running sandbox: its output pumped to the log, its progress shown, and a kill
when the attempt is canceled or its lease is lost."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.lease import AttemptWatch
from saassy.dispatch.logs import LogSink
from saassy.dispatch.progress import POLL_S as PROGRESS_POLL_S
from saassy.dispatch.progress import EventsTail, latest_progress, progress_json
from saassy.dispatch.repository import DispatchRepository
from saassy.events.bus import EventBus, publish_progress
from saassy.kit.time import utcnow
from saassy.runtime.base import Exit, SandboxHandle
from saassy.runtime.redaction import Redactor

log = structlog.get_logger(__name__)


class LeaseLost(Exception):
    """Another party owns the attempt now (adopted after our lease ran out)."""


@dataclass(frozen=True)
class SandboxWatcher:
    """Follows one attempt's sandbox until it ends, for its supervisor."""

    sessionmaker: async_sessionmaker[AsyncSession]
    events: EventBus
    ref: AttemptRef
    watch: AttemptWatch
    logs: LogSink
    redactor: Redactor

    async def until_exit(self, handle: SandboxHandle) -> tuple[Exit, bool]:
        """Until the sandbox ends; kills it on cancel (-> canceled) or a lost lease (raises)."""
        self.logs.start()
        pump = asyncio.create_task(self._pump(handle))
        progress = asyncio.create_task(self._follow_progress(handle))
        waiting = asyncio.create_task(handle.wait())
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await asyncio.wait({waiting, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                reason = watchdog.result()  # "cancel", or raises LeaseLost
                await handle.kill()
                exit_ = await waiting
                return exit_, reason == "cancel"
            return waiting.result(), False
        except LeaseLost:
            await handle.kill()
            await self.logs.close(write=False)
            raise
        finally:
            for follower in (watchdog, progress):
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                    await follower
            if waiting.done():
                # The sandbox has ended: its last lines are still on their way to the log.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await pump
            else:
                # Leaving a sandbox that still runs (the executor stops, the lease is lost): its
                # log is dropped, and waiting for output that ends with it would only delay that.
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _pump(self, handle: SandboxHandle) -> None:
        async for chunk in handle.output_chunks():  # capped and redacted by the runtime
            await self.logs.add(chunk)

    async def _follow_progress(self, handle: SandboxHandle) -> None:
        """Show the program's latest progress line while it runs (see progress.py)."""
        path = handle.live_events_file()
        if path is None:
            return
        tail, shown = EventsTail(path), None
        while True:
            await asyncio.sleep(PROGRESS_POLL_S)
            latest = latest_progress(tail.lines())
            if latest is None or latest == shown:
                continue
            shown = latest
            progress = progress_json(latest, self.ref.attempt_number, utcnow(), self.redactor)
            try:
                async with self.sessionmaker() as session, session.begin():
                    written = await DispatchRepository(session).update_task(
                        self.ref.task_id, self.ref.attempt_number, progress=progress
                    )
            except Exception:  # progress is a courtesy: the run goes on without it
                log.warning("progress not written", task_id=str(self.ref.task_id), exc_info=True)
                continue
            if written:
                await publish_progress(
                    self.events, self.ref.organization_id, self.ref.task_id, progress
                )

    async def _watchdog(self) -> str:
        """'cancel' when asked to; raises LeaseLost when the attempt is no longer ours."""
        waits = [
            asyncio.create_task(self.watch.cancel.wait()),
            asyncio.create_task(self.watch.lost.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if self.watch.lost.is_set():
            raise LeaseLost
        return "cancel"
