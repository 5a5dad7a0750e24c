"""A catalog with test task types, organizations and API keys made straight in the database."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.security import new_token, token_digest
from saassy.models import ApiKey, Organization

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 100
max_task_duration_s = 60
resources = { memory_mb = 512, cpus = 0.5 }
daily_action_caps = { publish = 2 }
api_rate_limit = "1000/minute"

[plans.pro]
name = "Pro"
tasks_per_month = 10000
max_task_duration_s = 3600
resources = { memory_mb = 4096, cpus = 2 }
api_rate_limit = "1000/minute"

[task_types.echo]
title = "Echo"
command = ["/usr/bin/python3", "{workers}/echo.py"]
default_timeout_s = 10
max_timeout_s = 600
resources = { memory_mb = 128, cpus = 0.25 }

[task_types.python]
title = "Python"
command = ["/usr/bin/python3", "-I", "{workers}/python_runner.py"]
default_timeout_s = 120
max_timeout_s = 3600
retries = 2
resources = { memory_mb = 256 }
input_schema = { type = "object", required = ["code"], additionalProperties = false, \
properties = { code = { type = "string", minLength = 1 }, \
args = { type = "array", items = { type = "string" } } } }

[task_types.publisher]
title = "Publisher"
command = ["/bin/true"]
actions = ["publish"]

[task_types.render]
title = "Render"
command = ["/bin/true"]
resources = { memory_mb = 2048, cpus = 1 }
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)


Tenant = Callable[..., Coroutine[Any, Any, "TenantKey"]]


class TenantKey:
    """An organization and an API key of it: the fast way to call the task API."""

    def __init__(self, organization_id: uuid.UUID, key: str) -> None:
        self.organization_id = organization_id
        self.key = key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def tenant(ctx: AppContext) -> Tenant:
    async def make(plan: str = "free", overrides: dict[str, Any] | None = None) -> TenantKey:
        key = f"sk_{new_token()}"
        async with ctx.sessionmaker() as session, session.begin():
            organization = Organization(name="Acme", plan=plan, plan_overrides=overrides or {})
            session.add(organization)
            await session.flush()
            session.add(
                ApiKey(
                    organization_id=organization.id,
                    name="test",
                    prefix=key[:10],
                    key_hash=token_digest(key),
                )
            )
        return TenantKey(organization.id, key)

    return make
