"""`saassy metrics`: a process that serves only `/metrics`, for a host whose processes serve
no HTTP themselves (task workers, schedulers): it reports what they wrote to the directory
they share (`PROMETHEUS_MULTIPROC_DIR`), and the database's numbers, behind the same token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from saassy.config import ConfigError, Environment, Settings
from saassy.context import AppContext
from saassy.events.memory import MemoryEventBus
from saassy.health import router as health_router
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.handlers import install_error_handlers
from saassy.kit.logging import configure_logging
from saassy.kit.ratelimit import RateLimiter, create_storage
from saassy.observability.exposition import (
    MULTIPROC_VARIABLE,
    check_multiprocess_dir,
    multiprocess_dir,
)
from saassy.observability.router import metrics_served
from saassy.observability.router import router as metrics_router
from saassy.storage.select import build_storage


def create_metrics_app(settings: Settings) -> FastAPI:
    if multiprocess_dir() is None:
        raise ConfigError(
            f"saassy metrics reports what this host's other processes observed: set "
            f"{MULTIPROC_VARIABLE} to the directory they share"
        )
    check_multiprocess_dir()
    if not metrics_served(settings):
        raise ConfigError(
            "SAASSY_METRICS_TOKEN must be set: production serves /metrics only behind it"
        )
    configure_logging(json=settings.env is Environment.production)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url, pool_size=2)
        app.state.ctx = AppContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            limiter=RateLimiter(create_storage(None)),
            # Nothing here follows tasks or serves files: the in-process defaults do.
            storage=build_storage(settings),
            events=MemoryEventBus(),
        )
        try:
            yield
        finally:
            await app.state.ctx.limiter.close()
            await engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.include_router(health_router)  # its probes: alive, and reaches the database
    app.include_router(metrics_router)
    return app
