"""Retention deletes the entries older than SAASSY_AUDIT_RETENTION_DAYS, and only those."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from saassy.audit.actions import AuditAction
from saassy.audit.actors import Actor
from saassy.audit.jobs import AuditPruner
from saassy.audit.service import record
from saassy.config import ConfigError, Settings, load_settings
from saassy.context import AppContext
from saassy.dispatch.engine import build_task_engine
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.time import utcnow
from saassy.models import AuditEntry
from saassy.runtime.fake import FakeRuntime
from tests.audit.support import entries


async def test_the_prune_deletes_old_entries_only(ctx: AppContext) -> None:
    now = utcnow()
    ages = {"ancient": 900, "just_past": 366, "just_inside": 364, "today": 0}
    async with ctx.sessionmaker() as session, session.begin():
        for name, days in ages.items():
            entry = await record(
                session, AuditAction.secret_set, Actor.nobody(), details={"name": name}
            )
            entry.created_at = now - timedelta(days=days)
    # A batch of one: the prune goes on until nothing is left past retention.
    pruner = AuditPruner(ctx.sessionmaker, 365, batch=1, clock=lambda: now)
    assert await pruner.prune() == 2
    assert sorted(e.details["name"] for e in await entries(ctx)) == ["just_inside", "today"]
    assert await pruner.prune() == 0


async def test_an_organizations_entries_outlive_its_deletion(ctx: AppContext) -> None:
    organization_id = uuid.uuid4()  # no foreign key: the log keeps ids of what is gone
    async with ctx.sessionmaker() as session, session.begin():
        await record(
            session, AuditAction.secret_set, Actor.nobody(), organization_id=organization_id
        )
    assert [e.organization_id for e in await entries(ctx)] == [organization_id]


async def test_the_embedded_engine_prunes_by_the_configured_retention(
    settings_factory: Callable[..., Settings],
) -> None:
    """`saassy dev`/`saassy api`: the engine's first round prunes at once, then hourly."""
    settings = settings_factory(audit_retention_days=30)
    engine = create_engine(settings.resolved_database_url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        for days in (31, 29):
            entry = await record(
                session, AuditAction.secret_set, Actor.nobody(), details={"name": f"d{days}"}
            )
            entry.created_at = utcnow() - timedelta(days=days)
    task_engine = build_task_engine(settings, sessionmaker, FakeRuntime())
    await task_engine.start()
    try:
        for _ in range(100):
            async with sessionmaker() as session:
                left = (await session.scalars(select(AuditEntry.details))).all()
            if len(left) == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await task_engine.stop(grace_s=0.1)
        await engine.dispose()
    assert left == [{"name": "d29"}]


def test_retention_is_read_from_the_environment_and_checked(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    assert load_settings().audit_retention_days == 365
    clean_environment.setenv("SAASSY_AUDIT_RETENTION_DAYS", "30")
    assert load_settings().audit_retention_days == 30
    clean_environment.setenv("SAASSY_AUDIT_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError, match="SAASSY_AUDIT_RETENTION_DAYS"):
        load_settings()
    clean_environment.delenv("SAASSY_AUDIT_RETENTION_DAYS")
    clean_environment.setenv("SAASSY_AUDIT_RETENTION_DAY", "30")
    with pytest.raises(ConfigError, match="did you mean SAASSY_AUDIT_RETENTION_DAYS"):
        load_settings()


async def test_details_that_could_hold_a_secret_are_refused(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        for name in ("value", "new_password", "api_key", "token", "email"):
            with pytest.raises(ValueError, match="secret or an address"):
                await record(session, AuditAction.secret_set, Actor.nobody(), details={name: "x"})
