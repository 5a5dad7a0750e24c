"""The FastAPI application: routers, error handlers, and what lives as long as the process."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from saassy import __version__
from saassy.accounts.router import router as accounts_router
from saassy.admin.router import router as admin_router
from saassy.api_keys.router import router as api_keys_router
from saassy.audit.router import router as audit_router
from saassy.auth.access_cache import RecentReads
from saassy.billing.caps.router import router as spend_cap_router
from saassy.billing.reconciliation_router import router as billing_reconciliation_router
from saassy.billing.reporting import meter_reporting_loop
from saassy.billing.router import router as billing_router
from saassy.billing.stripe_api import billing_enabled, new_http_client, stripe_client
from saassy.config import (
    ConfigError,
    Environment,
    ExecutorKind,
    RuntimeChoice,
    Settings,
    load_settings,
    redis_url,
)
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine, build_task_engine
from saassy.egress.gateway import RuntimeGateway
from saassy.egress.limits import raise_descriptor_limit
from saassy.egress.proxy import EgressProxy
from saassy.egress.resolver import SystemResolver
from saassy.email.relay import run_email_relay
from saassy.events.backends import create_event_bus
from saassy.health import router as health_router
from saassy.kit.body_limit import BodySizeLimit
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.errors import ErrorResponse
from saassy.kit.handlers import install_error_handlers
from saassy.kit.heap import freeze_start_up
from saassy.kit.instance import instance_id
from saassy.kit.logging import configure_logging
from saassy.kit.ratelimit import RateLimiter, RateLimitHeaders, create_storage
from saassy.kit.submit_turns import SubmitTurns
from saassy.notifications.router import router as notifications_router
from saassy.observability.error_tracking import report_logged_errors, start_error_tracking
from saassy.observability.exposition import check_multiprocess_dir, forget_process
from saassy.observability.requests import observe_requests
from saassy.observability.router import metrics_served
from saassy.observability.router import router as metrics_router
from saassy.organizations.router import invitations_router
from saassy.organizations.router import router as organizations_router
from saassy.plans.router import router as plans_router
from saassy.privacy.erasure_router import router as erasure_router
from saassy.privacy.export_jobs import ExportBuilder
from saassy.privacy.export_router import router as export_router
from saassy.quotas.router import router as usage_router
from saassy.runtime.base import Runtime
from saassy.runtime.process import detect_runtime
from saassy.schedules.jobs import ScheduleLoop
from saassy.schedules.router import router as schedules_router
from saassy.storage.select import build_storage
from saassy.system import router as system_router
from saassy.task_output.router import router as task_output_router
from saassy.tasks.router import router as tasks_router
from saassy.vault.router import router as vault_router
from saassy.web.errors import install_page_errors
from saassy.web.router import router as web_router
from saassy.web.router import static_files
from saassy.webhooks.relay import webhook_relay_loop
from saassy.webhooks.router import router as webhooks_router

if TYPE_CHECKING:
    from saassy.runtime.docker import DockerRuntime  # docker-py only where it runs

log = structlog.get_logger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 402, 403, 404, 409, 413, 422, 429)
}


# One per process, shared by every app built in it: including it checks each of its routes'
# paths, which makes FastAPI build them (pydantic adapters for each parameter and response)
# for the routers it includes. Built anew for each app, that cost ~0.18 s of CPU per app: at
# every start, and in each test's app (minutes per CI pass).
@functools.cache
def api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
    # First: a request is matched against the routers in order, and submitting and reading
    # tasks are the API's busiest routes (no other router's path overlaps theirs).
    api.include_router(tasks_router)
    api.include_router(accounts_router)
    api.include_router(notifications_router)
    api.include_router(organizations_router)
    api.include_router(invitations_router)
    api.include_router(api_keys_router)
    api.include_router(webhooks_router)
    api.include_router(plans_router)
    api.include_router(usage_router)
    api.include_router(spend_cap_router)
    api.include_router(vault_router)
    api.include_router(schedules_router)
    api.include_router(task_output_router)
    api.include_router(system_router)
    api.include_router(admin_router)
    api.include_router(audit_router)
    api.include_router(export_router)
    api.include_router(billing_router)
    api.include_router(billing_reconciliation_router)
    api.include_router(erasure_router)
    return api


# Shared by every app of the process, like `api_router`: FastAPI builds an included router's
# routes (their parameters' and responses' pydantic adapters) on the first request that walks
# past them, once per inclusion; included anew in each app, that was ~0.12 s of CPU per app
# again (each test's app). Nothing here sets `dependency_overrides`, which these routes would
# look up on this holder, not on the app serving them.
@functools.cache
def included_routes(*, metrics: bool) -> tuple[BaseRoute, ...]:
    holder = APIRouter()
    holder.include_router(health_router)
    if metrics:
        holder.include_router(metrics_router)
    holder.include_router(api_router())
    holder.include_router(web_router)
    return tuple(holder.routes)


def build_runtime(settings: Settings) -> Runtime:
    """The strongest sandbox runtime this host offers, as the settings allow, with the egress
    proxy that task types with network reach the outside through."""
    if settings.runtime is RuntimeChoice.docker:
        return build_docker_runtime(settings)
    return detect_runtime(
        allow_unisolated=settings.allow_unisolated,
        egress=egress_gateway(settings),
        instance=instance_id(settings.data_dir),
    )


def egress_gateway(settings: Settings) -> RuntimeGateway:
    """The egress proxy, as the runtimes hand it each sandbox's socket."""
    raise_descriptor_limit()  # before the proxy sizes its connection budget from it
    proxy = EgressProxy(
        SystemResolver(), allow_private=settings.egress_allow_private, hosts=settings.egress_hosts
    )
    return RuntimeGateway(proxy)


def build_docker_runtime(settings: Settings, announce: bool = True) -> DockerRuntime:
    """The docker runtime, once dockerd answers and holds every task type's image (with a
    /bin/sh where the type needs the gate: network, or secrets as variables). `announce` logs
    `runtime.ready` then: never before a refusal, and not from a check before the server."""
    from saassy.runtime.docker import DockerRuntime, DockerUnavailable

    task_types = settings.catalog.task_types
    images = {name: t.image for name, t in task_types.items() if t.image}
    gated = [n for n, t in task_types.items() if t.network or (t.secrets_as_env and t.secrets)]
    try:
        runtime = DockerRuntime(
            url=settings.docker_url,
            instance=instance_id(settings.data_dir),
            egress=egress_gateway(settings),
        )
    except DockerUnavailable as exc:
        raise ConfigError(f"SAASSY_RUNTIME=docker: {exc}") from None
    try:
        runtime.require_images(images, gated=gated)
    except DockerUnavailable as exc:
        runtime.close()
        raise ConfigError(f"SAASSY_RUNTIME=docker: {exc}") from None
    if announce:
        log.info("runtime.ready", summary=runtime.summary())
    return runtime


def embeds_engine(settings: Settings) -> bool:
    """Whether the server process runs attempts itself (`saassy dev`, `saassy api` with the
    local executor); with Celery, `saassy scheduler` dispatches and `saassy worker` runs them."""
    return settings.run_engine and settings.executor is ExecutorKind.local


def start_task_engine(ctx: AppContext, runtime: Runtime | None = None) -> TaskEngine:
    """The embedded engine: the strongest runtime this host offers, the local executor."""
    settings = ctx.settings
    return build_task_engine(
        settings,
        ctx.sessionmaker,
        runtime or build_runtime(settings),
        storage=ctx.storage,
        events=ctx.events,
        parallelism=settings.executor_parallelism,
        reserved_slots=settings.executor_reserved_slots,
        lease=timedelta(seconds=settings.task_lease_s),
        poll_s=settings.dispatch_poll_s,
        after_commit=ctx.after_commit,
    )


def schedule_loop(ctx: AppContext) -> ScheduleLoop:
    """Schedules fire here as in `saassy scheduler`: several processes may run it at once."""
    return ScheduleLoop(
        ctx.sessionmaker,
        ctx.settings,
        program_refusal=ctx.program_refusal,
        on_committed=ctx.after_commit,
        wakeup=ctx.schedule_wakeup,
    )


def create_served_app() -> FastAPI:
    """The app factory each worker of `saassy api --workers N` calls: the app from the
    environment's settings, its start-up heap frozen (kit/heap.py)."""
    app = create_app()
    freeze_start_up()
    return app


def create_app(
    settings: Settings | None = None, *, background: bool = True, runtime: Runtime | None = None
) -> FastAPI:
    """Build the app; `background=False` leaves the e-mail relay and the schedule loop to the
    caller (tests);
    `runtime` is the sandbox runtime the caller already probed (`saassy dev` shows it)."""
    settings = settings or load_settings()
    settings.catalog  # noqa: B018 - fail at start, not at the first request, on a bad saassy.toml
    settings.vault_keyring  # noqa: B018 - and on a missing or unsafe vault key
    settings.signing_secret  # noqa: B018 - and without a secret key to sign tokens with
    check_multiprocess_dir()
    tracking = start_error_tracking(settings)
    configure_logging(
        json=settings.env is Environment.production,
        report=[report_logged_errors] if tracking else [],
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage = build_storage(settings)
        await storage.check()  # an unreachable bucket stops start-up, saying which
        engine = create_engine(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )
        stripe_http = new_http_client() if billing_enabled(settings) else None
        ctx = AppContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            storage=storage,
            limiter=RateLimiter(
                create_storage(redis_url(settings)), namespace=settings.redis_prefix
            ),
            events=create_event_bus(redis_url(settings), prefix=settings.redis_prefix),
            stripe_api=stripe_client(settings, stripe_http),
            key_cache=RecentReads(ttl_s=settings.api_key_cache_s),
            user_cache=RecentReads(ttl_s=settings.user_access_cache_s),
        )
        app.state.ctx = ctx
        await ctx.events.start()
        log.info("events.bus", bus=ctx.events.describe())
        relay = asyncio.create_task(run_email_relay(ctx)) if background else None
        reporting = meter_reporting_loop(ctx.sessionmaker, settings) if background else None
        if reporting is not None:
            reporting.start()
        webhooks = (
            webhook_relay_loop(
                ctx.sessionmaker,
                settings,
                ctx.webhook_wakeup,
                ctx.events,
                # Its own engine's outcomes wake it through `after_commit`.
                every_task_end=ctx.events.spans_processes,
            )
            if background
            else None
        )
        if webhooks is not None:
            webhooks.start()
        exporter = (
            ExportBuilder(ctx.sessionmaker, settings, storage, wakeup=ctx.export_wakeup)
            if background
            else None
        )
        if exporter is not None:
            exporter.start()
        if background and embeds_engine(settings):
            ctx.task_engine = start_task_engine(ctx, runtime)
            await ctx.task_engine.start()
        # After the engine: a schedule's task is checked against the program this engine runs.
        schedules = schedule_loop(ctx) if background else None
        if schedules is not None:
            schedules.start()
        try:
            yield
        finally:
            if schedules is not None:
                await schedules.stop()
            if ctx.task_engine is not None:
                await ctx.task_engine.stop(grace_s=10)
            if reporting is not None:
                await reporting.stop()
            if webhooks is not None:
                await webhooks.stop()
            if exporter is not None:
                await exporter.stop()
            if relay is not None:
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)
            await ctx.events.close()
            await ctx.limiter.close()
            if stripe_http is not None:
                await stripe_http.aclose()
            await engine.dispose()
            forget_process()

    # Swagger UI from the assets inside the fastapi-offline wheel: the docs work offline and
    # load nothing from a CDN; no validator badge either (it would fetch from swagger.io).
    app = FastAPIOffline(
        title=f"{settings.catalog.branding.name} API",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        static_url="/api/docs/assets",
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        swagger_ui_parameters={"validatorUrl": None},
    )
    # In production the server's plain-text access log is off (server.py): its lines replace it.
    observe_requests(app, access_log=settings.env is Environment.production)
    if settings.submit_turns:
        app.add_middleware(SubmitTurns, turns=settings.submit_turns)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.trusted_proxies:
        # Outermost, so every part of the app sees the client the proxy saw.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    install_error_handlers(app)
    install_page_errors(app)
    app.router.routes.extend(included_routes(metrics=metrics_served(settings)))
    app.mount("/static", static_files, name="static")
    return app
