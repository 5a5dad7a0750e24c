"""Retention deletes the entries older than SAASSY_AUDIT_RETENTION_DAYS, and only those."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from saassy.audit.actions import AuditAction
from saassy.audit.actors import Actor
from saassy.audit.jobs import AuditPruner
from saassy.audit.service import record
from saassy.config import ConfigError, load_settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
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
