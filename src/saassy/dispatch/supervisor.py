"""Supervising one attempt, start to outcome: the code every executor runs.

Prepare the work dir, start the sandbox, stream its output to durable logs and the bus, keep
the lease alive and watch for cancel, then record usage, the result and artifacts and write a
fenced outcome. A supervisor that loses its lease kills its sandbox and writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.artifacts import discard, store_artifacts
from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.lease import AttemptWatch
from saassy.dispatch.logs import LogSink
from saassy.dispatch.outcome import AttemptOutcome, OutcomeFenced, write_outcome
from saassy.dispatch.plan import AttemptPlan, TaskTypeGone, plan_attempt
from saassy.dispatch.progress import POLL_S as PROGRESS_POLL_S
from saassy.dispatch.progress import EventsTail, latest_progress, progress_json
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.worker_output import InvalidResult, read_events, read_result
from saassy.events.bus import EventBus, publish_progress, publish_status
from saassy.kit.time import utcnow
from saassy.models import Artifact, AttemptStatus, Task, TaskStatus
from saassy.plans.catalog import Catalog
from saassy.runtime.base import (
    EndReason,
    Exit,
    Runtime,
    SandboxHandle,
    SandboxRefused,
    SandboxSpec,
    Usage,
)
from saassy.runtime.redaction import NO_SECRETS, Redactor
from saassy.storage.base import ArtifactStorage
from saassy.vault.errors import SecretMissing, VaultItemUnreadable
from saassy.vault.keys import KeyRing
from saassy.vault.service import open_secrets

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SupervisorDeps:
    """What a supervisor needs; an executor builds one and shares it across attempts."""

    sessionmaker: async_sessionmaker[AsyncSession]
    catalog: Catalog
    runtime: Runtime
    events: EventBus
    storage: ArtifactStorage
    work_root: Path
    keyring: KeyRing
    lease: timedelta = timedelta(seconds=15)
    workers_dir: Path | None = None


def sandbox_name(task_id: uuid.UUID, attempt_number: int) -> str:
    """The attempt's sandbox; adoption finds what a dead supervisor left by this name."""
    return f"task-{task_id}-attempt-{attempt_number}"


class LeaseLost(Exception):
    """Another party owns the attempt now (adopted after our lease ran out)."""


async def supervise(
    deps: SupervisorDeps,
    ref: AttemptRef,
    watch: AttemptWatch | None = None,
    *,
    task: Task | None = None,
    on_settled: Callable[[], None] | None = None,
) -> TaskStatus | None:
    """Run the attempt to its outcome; None when it was fenced off (nothing written).

    `watch` is fed by the process's LeaseKeeper (lease renewal and cancel requests). `task` is
    the row as a claim that already marked the attempt running left it; without it, the
    supervisor loads the task and marks the attempt running itself. `on_settled` is called
    once the outcome is written (or abandoned), before the sandbox's clean-up.
    """
    supervisor = AttemptSupervisor(deps, ref, watch or AttemptWatch(), task, on_settled)
    return await supervisor.run()


class AttemptSupervisor:
    def __init__(
        self,
        deps: SupervisorDeps,
        ref: AttemptRef,
        watch: AttemptWatch,
        task: Task | None = None,
        on_settled: Callable[[], None] | None = None,
    ) -> None:
        self.deps = deps
        self.ref = ref
        self.watch = watch
        self.claimed = task
        self.on_settled = on_settled
        self.work_dir = deps.work_root / f"{ref.task_id}-{ref.attempt_number}"
        self.handle: SandboxHandle | None = None
        self.redactor = NO_SECRETS
        self.logs = LogSink(
            deps.sessionmaker,
            deps.events,
            organization_id=ref.organization_id,
            task_id=ref.task_id,
            attempt_number=ref.attempt_number,
        )

    async def run(self) -> TaskStatus | None:
        try:
            return await self._run()
        except LeaseLost:
            log.warning(
                "attempt fenced off", task_id=str(self.ref.task_id), attempt=self.ref.attempt_number
            )
            return None
        except asyncio.CancelledError:
            # The executor is stopping: kill, and let adoption settle the attempt at once.
            await self._abandon()
            raise
        finally:
            if self.on_settled is not None:
                self.on_settled()
            await self._cleanup()

    async def _run(self) -> TaskStatus | None:
        task = self.claimed or await self._load()
        if task is None:
            raise LeaseLost
        try:
            plan = plan_attempt(self.deps.catalog, task, self.deps.workers_dir)
        except TaskTypeGone as exc:
            return await self._not_started(task, str(exc), "task_type_gone")
        if task.cancel_requested_at is not None or self.watch.cancel.is_set():
            return await self._finish(
                task,
                AttemptOutcome(
                    AttemptStatus.canceled,
                    "canceled before it started",
                    "canceled",
                    sandbox_started=False,
                ),
            )
        try:
            secrets = await self._open_secrets(task, plan)
        except (SecretMissing, VaultItemUnreadable) as exc:
            return await self._not_started(task, str(exc), exc.code)
        self.redactor = Redactor(secrets)
        spec = self._prepare(task, plan, secrets)
        if self.claimed is None:
            await self._mark_running()
        try:
            self.handle = await self.deps.runtime.start(spec)
        except SandboxRefused as refused:  # this host cannot run it as promised: no retry helps
            return await self._not_started(task, str(refused), refused.code)
        except Exception as exc:
            log.exception("sandbox failed to start", task_id=str(self.ref.task_id))
            return await self._finish(
                task,
                AttemptOutcome(
                    AttemptStatus.failed,
                    f"the sandbox did not start: {exc}",
                    "sandbox_start_failed",
                    retryable=True,
                    sandbox_started=False,
                ),
            )
        exit_, canceled = await self._watch(self.handle)
        await self.logs.close()
        usage = await self.handle.usage()
        outcome = self._outcome(exit_, canceled, plan, spec, usage, task)
        return await self._finish(task, outcome, spec.output_dir)

    async def _load(self) -> Task | None:
        async with self.deps.sessionmaker() as session, session.begin():
            repo = DispatchRepository(session)
            attempt = await repo.attempt(self.ref.task_id, self.ref.attempt_number)
            if attempt is None or attempt.executor_id != self.ref.executor_id:
                return None
            if attempt.status not in (AttemptStatus.dispatched, AttemptStatus.running):
                return None
            return await repo.live_task(self.ref.task_id, self.ref.attempt_number)

    async def _not_started(self, task: Task, error: str, code: str) -> TaskStatus | None:
        """The attempt fails before its sandbox runs: not retried, nothing charged."""
        failed = AttemptOutcome(AttemptStatus.failed, error, code, sandbox_started=False)
        return await self._finish(task, failed)

    async def _open_secrets(self, task: Task, plan: AttemptPlan) -> dict[str, str]:
        """The tenant's secrets the task type declares, opened for this attempt only."""
        names = plan.task_type.secrets
        if not names:
            return {}
        async with self.deps.sessionmaker() as session:
            return await open_secrets(session, self.deps.keyring, task.organization_id, names)

    def _prepare(self, task: Task, plan: AttemptPlan, secrets: dict[str, str]) -> SandboxSpec:
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        (self.work_dir / "output").mkdir(parents=True)
        (self.work_dir / "input.json").write_text(json.dumps(task.input))
        (self.work_dir / "events.jsonl").touch()
        return SandboxSpec(
            name=sandbox_name(self.ref.task_id, self.ref.attempt_number),
            argv=plan.argv,
            input_file=self.work_dir / "input.json",
            output_dir=self.work_dir / "output",
            events_file=self.work_dir / "events.jsonl",
            env=plan.env,
            limits=plan.limits,
            network=plan.network,
            network_allow=plan.network_allow,
            secrets={name: SecretStr(value) for name, value in secrets.items()},
            secrets_as_env=plan.task_type.secrets_as_env,
        )

    async def _mark_running(self) -> None:
        async with self.deps.sessionmaker() as session, session.begin():
            repo = DispatchRepository(session)
            if not await repo.mark_running(
                self.ref.task_id, self.ref.attempt_number, self.ref.executor_id, utcnow()
            ):
                raise LeaseLost
        await publish_status(
            self.deps.events,
            self.ref.organization_id,
            self.ref.task_id,
            TaskStatus.running,
            self.ref.attempt_number,
        )

    async def _watch(self, handle: SandboxHandle) -> tuple[Exit, bool]:
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
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
                async with self.deps.sessionmaker() as session, session.begin():
                    written = await DispatchRepository(session).update_task(
                        self.ref.task_id, self.ref.attempt_number, progress=progress
                    )
            except Exception:  # progress is a courtesy: the run goes on without it
                log.warning("progress not written", task_id=str(self.ref.task_id), exc_info=True)
                continue
            if written:
                await publish_progress(
                    self.deps.events, self.ref.organization_id, self.ref.task_id, progress
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

    def _outcome(
        self,
        exit_: Exit,
        canceled: bool,
        plan: AttemptPlan,
        spec: SandboxSpec,
        usage: Usage,
        task: Task,
    ) -> AttemptOutcome:
        assert spec.events_file is not None
        reported = read_events(spec.events_file, plan.actions)
        final_progress = None
        if reported.progress is not None:
            attempt = self.ref.attempt_number
            final_progress = progress_json(reported.progress, attempt, utcnow(), self.redactor)

        def ended(
            status: AttemptStatus,
            error: str | None = None,
            code: str | None = None,
            *,
            retryable: bool = False,
            result: Any = None,
        ) -> AttemptOutcome:
            return AttemptOutcome(
                status,
                error,
                code,
                exit_code=exit_.exit_code,
                end_reason=exit_.reason.value,
                usage=usage,
                result=result,
                retryable=retryable,
                actions=reported.actions,
                units=reported.units,
                progress=final_progress,
            )

        if canceled:
            return ended(AttemptStatus.canceled, "canceled while running", "canceled")
        if exit_.reason is EndReason.timed_out:
            error = f"exceeded its timeout of {task.timeout_s} s"
            return ended(AttemptStatus.timed_out, error, "timed_out", retryable=True)
        if exit_.reason is EndReason.out_of_memory:
            error = f"ran out of memory (limit {plan.limits.memory_mb} MB)"
            return ended(AttemptStatus.failed, error, "out_of_memory")
        if not exit_.succeeded:
            how = (
                f"exited with code {exit_.exit_code}"
                if exit_.exit_code is not None
                else f"was killed by signal {exit_.signal}"
            )
            return ended(AttemptStatus.failed, f"the program {how}", "exit_code", retryable=True)
        try:
            result = read_result(spec.output_dir)
        except InvalidResult as exc:
            return ended(AttemptStatus.failed, str(exc), "invalid_result")
        return ended(AttemptStatus.succeeded, result=result)

    async def _finish(
        self, task: Task, outcome: AttemptOutcome, output_dir: Path | None = None
    ) -> TaskStatus | None:
        ref = self.ref
        if self.redactor:
            outcome = replace(
                outcome,
                result=self.redactor.json(outcome.result),
                error=self.redactor.text(outcome.error) if outcome.error else outcome.error,
            )
        stored: list[Artifact] = []
        final = not (outcome.retryable and task.attempt_count < task.max_attempts)
        if final and output_dir is not None:
            stored = await store_artifacts(self.deps.storage, ref, output_dir)
        try:
            async with self.deps.sessionmaker() as session, session.begin():
                status = await write_outcome(
                    session,
                    self.deps.catalog,
                    task,
                    attempt_number=ref.attempt_number,
                    executor_id=ref.executor_id,
                    outcome=outcome,
                    now=utcnow(),
                    artifacts=stored,
                )
        except OutcomeFenced:
            await discard(self.deps.storage, stored)
            raise LeaseLost from None
        if status is TaskStatus.queued:
            await discard(self.deps.storage, stored)
        await publish_status(
            self.deps.events, ref.organization_id, ref.task_id, status, ref.attempt_number
        )
        return status

    async def _abandon(self) -> None:
        """Kill the sandbox and hand the attempt to adoption, with what it used: the clean-up
        that follows removes the cgroup, so adoption could not measure it."""
        usage = None
        if self.handle is not None:
            with contextlib.suppress(Exception):
                await self.handle.kill()
                await self.handle.wait()
                usage = await self.handle.usage()
        with contextlib.suppress(Exception):
            async with self.deps.sessionmaker() as session, session.begin():
                await DispatchRepository(session).release_lease(
                    self.ref.task_id,
                    self.ref.attempt_number,
                    self.ref.executor_id,
                    utcnow(),
                    usage,
                )

    async def _cleanup(self) -> None:
        with contextlib.suppress(Exception):
            await self.logs.close(write=False)
        if self.handle is not None:
            with contextlib.suppress(Exception):
                await self.handle.cleanup()
        await asyncio.to_thread(shutil.rmtree, self.work_dir, True)
