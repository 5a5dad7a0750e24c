"""`saassy worker` and `saassy scheduler`: the Celery executor's processes (docs/scale-out.md).

Both need SAASSY_EXECUTOR=celery, a reachable SAASSY_BROKER_URL, PostgreSQL and a current
schema; each refusal is one line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from saassy.cli.common import ConfigOption

if TYPE_CHECKING:
    from saassy.config import Settings


def _ready_settings(config: object) -> Settings:
    from saassy.cli.settings import reporting_errors, require_storage, settings_from
    from saassy.dispatch.broker import check_scale_out
    from saassy.kit.logging import configure_logging
    from saassy.kit.migrate import require_current_schema

    if config is not None:
        os.environ["SAASSY_CONFIG"] = str(config)
    settings = settings_from()
    with reporting_errors():
        settings.vault_keyring  # noqa: B018 - a missing vault key stops it here, in one line
        check_scale_out(settings)
        require_current_schema(settings.resolved_database_url)
        require_storage(settings)
    configure_logging(json=settings.env.value == "production")
    return settings


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Attempts this process runs at once.")
    ] = 4,
    config: ConfigOption = None,
) -> None:
    """Run attempts the schedulers send through the broker (a Celery worker).

    Needs SAASSY_EXECUTOR=celery, SAASSY_BROKER_URL and PostgreSQL; run it as root for full
    isolation. SIGTERM lets running attempts end; SIGQUIT kills them for adoption to re-run.
    See docs/scale-out.md.
    """
    from saassy.app import build_runtime
    from saassy.cli.settings import reporting_errors
    from saassy.dispatch.worker import run_worker
    from saassy.kit.heap import freeze_start_up

    settings = _ready_settings(config)
    with reporting_errors():
        runtime = build_runtime(settings)
    freeze_start_up()
    raise typer.Exit(run_worker(settings, runtime, concurrency))


def scheduler(config: ConfigOption = None) -> None:
    """Claim due tasks for the workers, re-run lost attempts, sweep stored output.

    Needs SAASSY_EXECUTOR=celery, SAASSY_BROKER_URL and PostgreSQL; several may run at once.
    See docs/scale-out.md.
    """
    from saassy.dispatch.scheduler import run_scheduler
    from saassy.kit.heap import freeze_start_up

    settings = _ready_settings(config)
    import asyncio  # here: every client command would pay for it at start

    freeze_start_up()
    asyncio.run(run_scheduler(settings))
