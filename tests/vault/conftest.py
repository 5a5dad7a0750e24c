"""A catalog whose task types declare secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from saassy.config import Settings

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 100
max_task_duration_s = 60
resources = { memory_mb = 512, cpus = 0.5 }
api_rate_limit = "1000/minute"

[task_types.mailer]
title = "Mailer"
command = ["/bin/true"]
secrets = ["SMTP_PASSWORD", "API_TOKEN"]

[task_types.heavy]
title = "Heavy"
command = ["/bin/true"]
secrets = ["API_TOKEN"]
resources = { memory_mb = 4096 }

[task_types.plain]
title = "Plain"
command = ["/bin/true"]
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)
