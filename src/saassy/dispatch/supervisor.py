"""Supervising one attempt, start to outcome: the code every executor runs.

Prepare the work dir, start the sandbox, stream its output to durable logs and the bus, keep
the lease alive and watch for cancel (`sandbox_watch.py`), then record usage, the result and
artifacts and write a fenced outcome. A supervisor that loses its lease kills its sandbox and
writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import SecretStr
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.artifacts import OutputRefused, discard, store_artifacts, without_output
from saassy.dispatch.attempt_setup import AttemptSetup, TaskTypeGone, attempt_setup
from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.lease import AttemptWatch
from saassy.dispatch.logs import LogSink
from saassy.dispatch.outcome import (
    PLATFORM_LOSS_RETRIES,
    AttemptOutcome,
    OutcomeFenced,
    retry_follows,
    write_outcome,
)
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.run_outcome import (
    INVALID_OUTPUT,
    FinishedRun,
    invalid_output,
    refused_by_database,
    run_outcome,
)
from saassy.dispatch.sandbox_watch import LeaseLost, SandboxWatcher
from saassy.dispatch.worker_output import left_little
from saassy.events.bus import EventBus, publish_status
from saassy.kit.after_commit import Reaction, act_after_commit, take_effects
from saassy.kit.db_outage import OutageWatch, is_database_outage, through_outage
from saassy.kit.threads import on_loop_if
from saassy.kit.time import utcnow
from saassy.models import Artifact, AttemptStatus, Task, TaskStatus
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.observability import metrics
from saassy.plans.catalog import Catalog
from saassy.quotas.storage import StorageQuota
from saassy.runtime.artifacts import ArtifactRefused, OutputLimits
from saassy.runtime.base import (
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
T = TypeVar("T")

OUTCOME_WAIT_S = 600.0  # then the attempt goes to adoption, as when the process dies
OUTCOME_WRITES = OutageWatch("outcome writes")  # one line per outage, not one per attempt
ATTEMPT_LOADS = OutageWatch("attempt loads")

MAX_LEFT_OUT_LINES = 20


@dataclass(frozen=True)
class EngineServices:
    """The engine's shared services a supervisor needs; an executor builds one for all attempts."""

    sessionmaker: async_sessionmaker[AsyncSession]
    catalog: Catalog
    runtime: Runtime
    events: EventBus
    storage: ArtifactStorage
    work_root: Path
    keyring: KeyRing
    lease: timedelta = timedelta(seconds=15)
    workers_dir: Path | None = None
    platform_loss_retries: int = PLATFORM_LOSS_RETRIES
    # E-mails a task's failure to a submitter who opted in (None: no e-mail, as in unit tests).
    notices: TaskFailureNotices | None = None
    # Acts on what a committed outcome queued (webhook messages, e-mail): the process's relays
    # deliver now rather than at their next poll (kit/after_commit.py; None: at the poll).
    after_commit: Reaction | None = None


def sandbox_name(task_id: uuid.UUID, attempt_number: int) -> str:
    """The attempt's sandbox; adoption finds what a dead supervisor left by this name."""
    return f"task-{task_id}-attempt-{attempt_number}"


class AttemptSupervisor:
    """Runs one attempt to its outcome (`run`); None when it was fenced off (nothing written).

    `watch` is fed by the process's LeaseKeeper (lease renewal and cancel requests). `task` is
    the row as a claim that already marked the attempt running left it; without it, the
    supervisor loads the task and marks the attempt running itself. `on_outcome` is called
    once the outcome is written (or abandoned), before the sandbox's clean-up.
    """

    def __init__(
        self,
        deps: EngineServices,
        ref: AttemptRef,
        watch: AttemptWatch | None = None,
        *,
        task: Task | None = None,
        on_outcome: Callable[[], None] | None = None,
    ) -> None:
        self.deps = deps
        self.ref = ref
        self.watch = watch or AttemptWatch()
        self.claimed = task
        self.on_outcome = on_outcome
        self.work_dir = deps.work_root / f"{ref.task_id}-{ref.attempt_number}"
        self.handle: SandboxHandle | None = None
        self.sandbox_started_at = 0.0
        self.sandbox_seconds: float | None = None  # from start to exit, once it has exited
        self.left_little = False  # its output, once read: small enough for the loop to remove
        self.committed_effects: list[object] = []  # what the committed outcome queued
        self.redactor = NO_SECRETS
        self.logs = LogSink(
            deps.sessionmaker,
            deps.events,
            organization_id=ref.organization_id,
            task_id=ref.task_id,
            attempt_number=ref.attempt_number,
        )

    async def run(self) -> TaskStatus | None:
        # Every log line of this attempt, ours and the modules' we call, carries its identity.
        with structlog.contextvars.bound_contextvars(
            task_id=str(self.ref.task_id), attempt=self.ref.attempt_number
        ):
            metrics.supervising(+1)
            try:
                return await self._supervise()
            finally:
                metrics.supervising(-1)

    async def _supervise(self) -> TaskStatus | None:
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
        except Exception:
            # A fault of the platform, not the program: adoption takes the attempt at once,
            # billed what its sandbox used, and re-runs it under the platform-loss budget.
            log.exception("supervisor failed", task_id=str(self.ref.task_id))
            await self._abandon()
            return None
        finally:
            if self.on_outcome is not None:
                self.on_outcome()
            await self._cleanup()

    async def _run(self) -> TaskStatus | None:
        task = self.claimed or await self._load()
        if task is None:
            raise LeaseLost
        try:
            setup = attempt_setup(self.deps.catalog, task, self.deps.workers_dir)
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
            secrets = await self._open_secrets(task, setup)
        except (SecretMissing, VaultItemUnreadable) as exc:
            return await self._not_started(task, str(exc), exc.code)
        self.redactor = Redactor(secrets)
        spec = self._prepare(task, setup, secrets)
        if self.claimed is None:
            await self._mark_running()
        try:
            starting = time.perf_counter()
            self.handle = await self.deps.runtime.start(spec)
            metrics.sandbox_started(self.deps.runtime.name, time.perf_counter() - starting)
            self.sandbox_started_at = time.perf_counter()
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
        watcher = SandboxWatcher(
            self.deps.sessionmaker, self.deps.events, self.ref, self.watch, self.logs, self.redactor
        )
        exit_, canceled = await watcher.until_exit(self.handle)
        self.sandbox_seconds = time.perf_counter() - self.sandbox_started_at
        await self._close_logs()
        usage = await self._measure(self.handle)  # before the output: whatever it holds
        assert spec.events_file is not None
        run = FinishedRun(exit_, canceled, usage, spec.output_dir, spec.events_file, task.timeout_s)
        # Parsing up to a MiB of a program's JSON is off the event loop other tenants share;
        # a few KiB is cheaper here than a hop to a thread (kit/threads.py).
        self.left_little = left_little(spec.output_dir, spec.events_file)
        outcome = await on_loop_if(
            self.left_little,
            run_outcome,
            run,
            setup,
            self.ref.attempt_number,
            utcnow(),
            self.redactor,
        )
        return await self._finish(task, outcome, spec.output_dir, setup.task_type.outputs.limits)

    async def _close_logs(self) -> None:
        try:
            await self.logs.close()
        except Exception:  # the outcome and its billing matter more than the last lines
            log.exception("logs not closed", task_id=str(self.ref.task_id))

    async def _measure(self, handle: SandboxHandle) -> Usage | None:
        try:
            return await handle.usage()
        except Exception:
            log.exception("usage not measured", task_id=str(self.ref.task_id))
            return None

    async def _load(self) -> Task | None:
        """The task, if the attempt is still this executor's. A database restarting as the
        attempt starts is waited out, up to a lease (fenced: an attempt adopted meanwhile shows
        in its row), rather than handed to adoption to run again."""
        return await self._within_a_lease(self._load_once)

    async def _within_a_lease(self, step: Callable[[], Awaitable[T]]) -> T:
        """`step`, tried again while the database restarts, up to a lease: an attempt's steps
        before its sandbox runs are fenced, so a retry cannot run it twice."""
        give_up_after_s = self.deps.lease.total_seconds()
        return await through_outage(step, ATTEMPT_LOADS, give_up_after_s=give_up_after_s)

    async def _load_once(self) -> Task | None:
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

    async def _mark_running_once(self) -> bool:
        async with self.deps.sessionmaker() as session, session.begin():
            return await DispatchRepository(session).mark_running(
                self.ref.task_id, self.ref.attempt_number, self.ref.executor_id, utcnow()
            )

    async def _open_secrets(self, task: Task, setup: AttemptSetup) -> dict[str, str]:
        """The tenant's secrets the task type declares, opened for this attempt only. Waits out
        a database restarting meanwhile, up to a lease, as `_load` does."""
        names = setup.task_type.secrets
        if not names:
            return {}

        async def open_once() -> dict[str, str]:
            async with self.deps.sessionmaker() as session:
                organization_id = task.organization_id
                values = await open_secrets(session, self.deps.keyring, organization_id, names)
                await session.commit()  # when they were last used
                return values

        return await self._within_a_lease(open_once)

    def _prepare(self, task: Task, setup: AttemptSetup, secrets: dict[str, str]) -> SandboxSpec:
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        (self.work_dir / "output").mkdir(parents=True)
        (self.work_dir / "input.json").write_text(json.dumps(task.input))
        (self.work_dir / "events.jsonl").touch()
        return SandboxSpec(
            name=sandbox_name(self.ref.task_id, self.ref.attempt_number),
            argv=setup.argv,
            image=setup.image,
            input_file=self.work_dir / "input.json",
            output_dir=self.work_dir / "output",
            events_file=self.work_dir / "events.jsonl",
            env=setup.env,
            limits=setup.limits,
            tenant=str(task.organization_id),
            network=setup.network,
            network_allow=setup.network_allow,
            secrets={name: SecretStr(value) for name, value in secrets.items()},
            secrets_as_env=setup.task_type.secrets_as_env,
            allow_user_namespaces=setup.task_type.allow_user_namespaces,
        )

    async def _mark_running(self) -> None:
        """Waits out a database restarting meanwhile, up to a lease, as `_load` does."""
        if not await self._within_a_lease(self._mark_running_once):
            raise LeaseLost
        await publish_status(
            self.deps.events,
            self.ref.organization_id,
            self.ref.task_id,
            TaskStatus.running,
            self.ref.attempt_number,
        )

    async def _finish(
        self,
        task: Task,
        outcome: AttemptOutcome,
        output_dir: Path | None = None,
        output_limits: OutputLimits | None = None,
    ) -> TaskStatus | None:
        """Store the outcome (and the artifacts of a final one). Whatever fails on the way ends
        the attempt `invalid_output` with its usage; only a database that takes nothing at all
        leaves the attempt to adoption, with what the sandbox used."""
        ref = self.ref
        try:
            outcome = self._redacted(outcome)
        except Exception as exc:
            outcome = invalid_output(outcome, exc)
        stored: list[Artifact] = []
        left_out: list[ArtifactRefused] = []
        retry = retry_follows(task, ref.attempt_number, outcome, self.deps.platform_loss_retries)
        # Artifacts are kept only with a final outcome, and never with output found invalid.
        quota = StorageQuota(self.deps.sessionmaker, self.deps.catalog)
        if (
            output_dir is not None
            and output_limits is not None
            and not retry
            and outcome.error_code != INVALID_OUTPUT
        ):
            try:
                kept = await store_artifacts(
                    self.deps.storage, ref, output_dir, output_limits, quota
                )
                stored, left_out = kept.artifacts, kept.left_out
            except OutputRefused as refused:
                outcome = without_output(outcome, refused)
            except Exception as exc:
                log.warning("artifacts not stored", task_id=str(ref.task_id), exc_info=True)
                outcome = invalid_output(outcome, exc)
        try:
            if left_out:  # before the outcome: a client that sees the end sees the note too
                await self._say_left_out(left_out)
            status = await self._write(task, outcome, stored)
        except OutcomeFenced:
            await discard(self.deps.storage, stored, quota)
            raise LeaseLost from None
        except Exception as exc:
            await discard(self.deps.storage, stored, quota)
            log.exception("outcome not written", task_id=str(ref.task_id))
            rewritten = await self._write_refused(task, outcome, exc)
            if rewritten is None:
                return None
            status = rewritten
        except BaseException:  # cancelled mid-write: no rows were written, no objects may stay
            await discard(self.deps.storage, stored, quota)
            raise
        if status is TaskStatus.queued:
            await discard(self.deps.storage, stored, quota)
        await act_after_commit(self.deps.after_commit, self.committed_effects)
        metrics.attempt_ended(task.type, outcome.status.value, self.sandbox_seconds)
        await publish_status(
            self.deps.events, ref.organization_id, ref.task_id, status, ref.attempt_number
        )
        return status

    async def _say_left_out(self, refused: list[ArtifactRefused]) -> None:
        """Tell the customer, in the task's log, which files were not kept and why."""
        lines = [f"not kept as an artifact: {r.relative_path} ({r.reason})" for r in refused]
        if len(lines) > MAX_LEFT_OUT_LINES:
            more = len(lines) - MAX_LEFT_OUT_LINES
            lines = [*lines[:MAX_LEFT_OUT_LINES], f"... and {more} more not kept"]
        try:
            await self.logs.note(lines)
        except Exception:  # a courtesy: the outcome matters more
            log.warning("left-out files not noted", task_id=str(self.ref.task_id), exc_info=True)

    async def _write_refused(
        self, task: Task, outcome: AttemptOutcome, exc: Exception
    ) -> TaskStatus | None:
        """The database refused the outcome: write it `invalid_output`, without what the
        program left. A database out of reach is the platform's failure instead: the attempt
        goes to adoption with what its sandbox used, and None is returned."""
        if not isinstance(exc, OperationalError | InterfaceError) and not is_database_outage(exc):
            why = f"the outcome could not be stored: {refused_by_database(exc)}"
            try:
                return await self._write(task, invalid_output(outcome, why), [])
            except OutcomeFenced:
                raise LeaseLost from None
            except Exception:
                log.exception("outcome not written again", task_id=str(self.ref.task_id))
        await self._abandon()
        return None

    def _redacted(self, outcome: AttemptOutcome) -> AttemptOutcome:
        if not self.redactor:
            return outcome
        error = self.redactor.text(outcome.error) if outcome.error else outcome.error
        return replace(outcome, result=self.redactor.json(outcome.result), error=error)

    async def _write(
        self, task: Task, outcome: AttemptOutcome, artifacts: list[Artifact]
    ) -> TaskStatus:
        async def write() -> tuple[TaskStatus, list[object]]:
            async with self.deps.sessionmaker() as session:
                async with session.begin():
                    status = await write_outcome(
                        session,
                        self.deps.catalog,
                        task,
                        attempt_number=self.ref.attempt_number,
                        executor_id=self.ref.executor_id,
                        outcome=outcome,
                        now=utcnow(),
                        artifacts=artifacts,
                        platform_loss_retries=self.deps.platform_loss_retries,
                        notices=self.deps.notices,
                    )
                return status, take_effects(session)

        # Fenced by the attempt number, so waiting out a database restart is safe: the attempt
        # ends as it ran rather than running again.
        status, effects = await through_outage(
            write, OUTCOME_WRITES, give_up_after_s=OUTCOME_WAIT_S
        )
        self.committed_effects += effects  # acted on by `_finish`, once nothing can undo them
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
        await on_loop_if(self.left_little, shutil.rmtree, self.work_dir, True)
