"""Submitting, reading and canceling tasks; admission rules live in admission.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.auth.principal import ActiveOrganization, OrganizationScope, Principal
from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import NotFound, QuotaExceeded
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.time import utcnow
from saassy.models import Task, TaskStatus
from saassy.organizations.repository import OrganizationRepository
from saassy.plans.catalog import Catalog
from saassy.plans.service import plan_with_overrides
from saassy.quotas.task_reservations import close_task_reservations
from saassy.tasks.admission import check_input, check_resources, reserve_for, resolve_timeout
from saassy.tasks.catalog import TaskType
from saassy.tasks.effects import CancelRequested, TaskQueued
from saassy.tasks.errors import (
    IdempotencyKeyReused,
    SubscriptionRequired,
    TaskFinished,
    TaskNotFound,
    TaskTypeUnavailable,
    UnknownTaskType,
)
from saassy.tasks.repository import TaskFilters, TaskRepository
from saassy.tasks.schemas import TaskSubmit
from saassy.vault.service import require_secrets
from saassy.webhooks.events import queue_task_event

ProgramRefusal = Callable[[TaskType], str | None]


def list_task_types(catalog: Catalog) -> list[TaskType]:
    """The operator's task types, by name."""
    return [catalog.task_types[name] for name in sorted(catalog.task_types)]


def request_digest(body: TaskSubmit) -> str:
    """What an Idempotency-Key is bound to: the whole request, canonically encoded."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Submission:
    task: Task
    created: bool  # False: an earlier request with the same Idempotency-Key made it


async def submit_task(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: ActiveOrganization,
    body: TaskSubmit,
    idempotency_key: str | None = None,
    *,
    program_refusal: ProgramRefusal,
) -> Submission:
    """Admit a task and queue it, reserving its quota in the same transaction.

    `program_refusal` says why this server cannot start a type's program (AppContext's)."""
    catalog = settings.catalog
    task_type = catalog.task_type(body.type)
    if task_type is None:
        raise UnknownTaskType(body.type, sorted(catalog.task_types))
    if program_refusal(task_type) is not None:
        raise TaskTypeUnavailable(task_type.name)
    # The caller was authenticated before this transaction wrote anything: an organization
    # deleted since must not get a task its deletion never saw (and so never canceled). Its
    # plan is read here too, before anything is checked against it: the caller's may be older
    # (a remembered API key's, by up to SAASSY_API_KEY_CACHE_S), and the task is admitted or
    # refused under the plan it has now (a customer who has just paid is not refused).
    live = await OrganizationRepository(session).hold_live_plan(organization.id)
    if live is None:
        raise NotFound("Organization")
    organization = replace(organization, plan=live.plan, plan_overrides=live.plan_overrides)
    if task_type.requires_plan and organization.plan not in task_type.requires_plan:
        raise SubscriptionRequired(task_type.name, task_type.requires_plan, organization.plan)
    check_input(task_type, body.input)
    digest = request_digest(body)
    tasks = TaskRepository(session)
    if idempotency_key is not None:
        earlier = await tasks.get_by_idempotency_key(organization.id, idempotency_key)
        if earlier is not None:
            return _replay(earlier, digest)
    plan = plan_with_overrides(
        catalog, organization.plan, organization.plan_overrides, organization.id
    )
    timeout_s = resolve_timeout(task_type, plan, body.timeout_s)
    check_resources(task_type, plan)
    await require_secrets(
        session, principal.scope, organization.id, task_type.secrets, task_type=task_type.name
    )
    now = utcnow()

    async def admit() -> Task:
        reservations = await reserve_for(session, settings, plan, organization.id, task_type, now)
        return await tasks.insert_new(
            organization_id=organization.id,
            type=task_type.name,
            status=TaskStatus.queued,
            priority=body.priority,
            input=body.input,
            timeout_s=timeout_s,
            max_attempts=task_type.max_attempts,
            attempt_count=0,
            platform_losses=0,
            run_after=now,
            created_at=now,
            idempotency_key=idempotency_key,
            request_digest=digest,
            quota_reservation_id=reservations.tasks,
            action_reservations=reservations.actions or None,
            submitted_by_user_id=principal.user_id,
            submitted_by_api_key_id=principal.api_key_id,
        )

    if idempotency_key is None:
        # A failure fails the request, and its rollback takes the reservations with it.
        task = await admit()
    else:
        try:
            # A savepoint: a concurrent twin with the same key fails here, and its reservation
            # goes with it; the request can then answer with the twin's task.
            async with session.begin_nested():
                task = await admit()
        except (IntegrityError, QuotaExceeded):
            # The twin may also have taken the last unit of quota before this request reserved.
            twin = await tasks.get_by_idempotency_key(organization.id, idempotency_key)
            if twin is None:
                raise
            return _replay(twin, digest)
    after_commit(session, TaskQueued(organization.id, task.id))
    return Submission(task, created=True)


def _replay(earlier: Task, digest: str) -> Submission:
    if earlier.request_digest != digest:
        raise IdempotencyKeyReused(str(earlier.id))
    return Submission(earlier, created=False)


async def get_task(session: AsyncSession, scope: OrganizationScope, task_id: uuid.UUID) -> Task:
    """A task of one of the caller's organizations; any other id is a 404."""
    task = await TaskRepository(session).get_in_scope(task_id, scope)
    if task is None:
        raise TaskNotFound()
    return task


async def list_tasks(
    session: AsyncSession,
    scope: OrganizationScope,
    organization_id: uuid.UUID,
    filters: TaskFilters,
    params: PageParams,
) -> tuple[list[Task], str | None]:
    """The organization's tasks, newest first."""
    rows = await TaskRepository(session).list_for_organization(
        organization_id, scope, filters, params
    )
    return page_of(rows, params, lambda task: (task.created_at, task.id))


@dataclass(frozen=True)
class Cancellation:
    task: Task
    # The task was dispatched or running: its executor must kill the sandbox and finalize it.
    executor_must_stop: bool


async def cancel_task(
    session: AsyncSession, scope: OrganizationScope, task_id: uuid.UUID
) -> Cancellation:
    """Cancel a queued task now; ask the executor to stop a running one; 409 if it ended."""
    tasks = TaskRepository(session)
    task = await get_task(session, scope, task_id)
    if TaskStatus(task.status).terminal:
        raise TaskFinished(task.status)
    now = utcnow()
    if await tasks.cancel_if_queued(task.id, now):
        task = await tasks.refreshed(task.id)
        await close_task_reservations(session, task, ran=task.attempt_count > 0)
        await queue_task_event(session, task.id, task.organization_id, TaskStatus.canceled)
        return Cancellation(task, executor_must_stop=False)
    # Claimed by a dispatcher since it was read (or already dispatched): the executor stops it.
    if await tasks.request_cancel(task.id, now):
        after_commit(session, CancelRequested(task.id))
        return Cancellation(await tasks.refreshed(task.id), executor_must_stop=True)
    task = await tasks.refreshed(task.id)
    raise TaskFinished(task.status)


async def cancel_organization_tasks(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """The organization is being deleted: nothing of it may run again. Queued tasks end
    canceled, their quota given back as a cancel gives it; executors kill the running ones
    (their outcome then counts what ran)."""
    tasks = TaskRepository(session)
    now = utcnow()
    # Every task row before any quota counter, the order an attempt's outcome locks them in.
    canceled = await tasks.cancel_queued_of(
        organization_id, now, "The organization was deleted.", "organization_deleted"
    )
    await tasks.request_cancel_of(organization_id, now)
    for task in canceled:
        await close_task_reservations(session, task, ran=task.attempt_count > 0)
