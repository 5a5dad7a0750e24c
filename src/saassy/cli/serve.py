"""`saassy dev` (everything in one process, embedded database) and `saassy api` (production)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from saassy.cli.common import ConfigOption, DataDirOption, console

if TYPE_CHECKING:
    from saassy.config import Settings
    from saassy.runtime.base import Runtime

# The app, SQLAlchemy and alembic are imported inside the commands: `saassy tasks` stays fast.

HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]


def dev(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run everything in one process for development: migrate the embedded database, serve."""
    from saassy.app import build_runtime, create_app
    from saassy.cli.settings import reporting_errors, require_storage, settings_from
    from saassy.config import ConfigError
    from saassy.kit.migrate import upgrade_database
    from saassy.kit.secret_key import development_secret_key
    from saassy.server import serve

    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    overrides: dict[str, str] = {"env": "development"}
    settings = settings_from(config=config, data_dir=data_dir, **overrides)
    if "base_url" not in settings.model_fields_set:
        # Links in e-mails (magic links, invitations) should point at this very server.
        overrides["base_url"] = url
    with reporting_errors():
        if settings.executor.value != "local":
            raise ConfigError(
                "saassy dev runs tasks in its own process: unset SAASSY_EXECUTOR and "
                "SAASSY_BROKER_* (Celery runs as `saassy scheduler` and `saassy worker`)"
            )
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if settings.secret_key is None:
            overrides["secret_key"] = development_secret_key(settings.data_dir)
    if len(overrides) > 1:
        settings = settings_from(config=config, data_dir=data_dir, **overrides)
    with reporting_errors():
        upgrade_database(settings.resolved_database_url)
        require_storage(settings)
        runtime = build_runtime(settings)
    console.print(first_run_hint(settings, url, runtime))
    serve(create_app(settings, runtime=runtime), host=host, port=port)


def first_run_hint(settings: Settings, url: str, runtime: Runtime) -> str:
    """What a newcomer needs on screen: where it runs, the docs, how to get an account."""
    from saassy.cli.settings import redacted

    data_dir = "" if settings.data_dir == Path(".saassy") else f" --data-dir {settings.data_dir}"
    return "\n".join(
        [
            f"[bold]{escape(settings.catalog.branding.name)}[/bold] (saassy dev) on {url}",
            f"  database  {escape(redacted(settings.resolved_database_url))}",
            f"  catalog   {escape(str(settings.config_path))}",
            isolation_line(runtime),
            *refused_lines(settings, runtime),
            billing_line(settings),
            f"  dashboard {url}/  (sign up at {url}/signup)",
            f"  API docs  {url}/api/docs  (OpenAPI schema: {url}/api/openapi.json)",
            "Or sign up with the API:",
            f"  curl -X POST {url}/api/v1/auth/signup -H 'Content-Type: application/json' "
            """-d '{"email": "you@example.com", "password": "a long passphrase"}'""",
            f"Then log in from the command line: {escape(_command())} login --api-url {url}",
            "Create a staff user (the operator's admin), in another terminal:",
            f"  {escape(_command())} admin create-user admin@example.com --staff{escape(data_dir)}",
            "E-mails (verification, magic links, invitations) are printed here in development.",
            "",
        ]
    )


def billing_line(settings: Settings) -> str:
    """Whether billing is on, in which Stripe mode, and where Stripe is when not Stripe's own."""
    if settings.stripe_secret_key is None:
        return "  billing   off (no SAASSY_STRIPE_SECRET_KEY: staff assign plans)"
    live = settings.stripe_secret_key.get_secret_value().split("_")[1] == "live"  # sk_live_...
    where = f" at {escape(settings.stripe_api_base)}" if settings.stripe_api_base else ""
    return f"  billing   on: Stripe {'live' if live else 'test'} mode{where}"


def isolation_line(runtime: Runtime) -> str:
    """The isolation in force, in one line; loud when tasks cannot run in a sandbox."""
    from saassy.runtime.base import IsolationLevel

    line = f"  isolation {escape(runtime.summary())}"
    if runtime.isolation in (IsolationLevel.unavailable, IsolationLevel.rlimits):
        return f"[bold red]{line}[/bold red]"
    return line


def refused_lines(settings: Settings, runtime: Runtime) -> list[str]:
    """Task types of the catalog this host will refuse (e.g. network without root, a program
    not installed), if any."""
    from saassy.dispatch.refusals import refusals
    from saassy.runtime.base import IsolationLevel

    refused = refusals(runtime, settings.catalog, None)
    if not refused or runtime.isolation is IsolationLevel.unavailable:
        return []  # none, or every one (the isolation line says so)
    return [
        f"[bold red]  refused   task type {escape(name)}: {escape(why)}[/bold red]"
        for name, why in refused.items()
    ]


def _command() -> str:
    """How to call `saassy` from this shell: by name when on PATH, else from the virtualenv."""
    if shutil.which("saassy"):
        return "saassy"
    script = Path(sys.executable).parent / "saassy"
    if not script.exists():
        return "saassy"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def api(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Run the production API server; configure it with SAASSY_* variables.

    It never migrates the database: run `saassy db upgrade` first, once per release.
    """
    from saassy.cli.settings import (
        reporting_errors,
        require_runtime,
        require_storage,
        settings_from,
    )
    from saassy.kit.migrate import require_current_schema
    from saassy.observability.exposition import refuse_split_metrics
    from saassy.observability.router import metrics_served
    from saassy.server import serve

    if config is not None:
        # The workers build their own settings from the environment, so pass it on there.
        os.environ["SAASSY_CONFIG"] = str(config)
    settings = settings_from()
    with reporting_errors():
        settings.signing_secret  # noqa: B018 - one clear line, before any worker starts
        require_current_schema(settings.resolved_database_url)
        require_storage(settings)
        require_runtime(settings)
        refuse_split_metrics(workers, metrics_served(settings))
    from saassy.config import Environment

    json_logs = settings.env is Environment.production
    serve(
        "saassy.app:create_served_app", host=host, port=port, workers=workers, json_logs=json_logs
    )


def metrics(
    host: HostOption = "127.0.0.1",
    port: PortOption = 9464,
    config: ConfigOption = None,
) -> None:
    """Serve only /metrics: what this host's workers and schedulers observed, for Prometheus.

    They must share its PROMETHEUS_MULTIPROC_DIR; SAASSY_METRICS_TOKEN guards it as on the API.
    """
    from saassy.cli.settings import reporting_errors, settings_from
    from saassy.config import Environment
    from saassy.observability.exporter import create_metrics_app
    from saassy.server import serve

    settings = settings_from(config=config)
    with reporting_errors():
        app = create_metrics_app(settings)
    json_logs = settings.env is Environment.production
    serve(app, host=host, port=port, json_logs=json_logs)
