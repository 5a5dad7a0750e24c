"""One scrape: this process's metrics, or every process's under `PROMETHEUS_MULTIPROC_DIR`,
plus the database's numbers read now."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.config import ConfigError
from saassy.kit.time import utcnow
from saassy.observability.queue_collector import QueueCollector, QueueSnapshot, read_queue

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_VARIABLE) or None


def check_multiprocess_dir() -> None:
    """prometheus-client writes a file per process there: a missing or read-only directory
    would fail the first metric, so stop at start-up instead."""
    path = multiprocess_dir()
    if path is not None and not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
        raise ConfigError(f"{MULTIPROC_VARIABLE}={path}: not a writable directory")


def refuse_split_metrics(workers: int, served: bool) -> None:
    """Several worker processes without the shared directory: each scrape would show only the
    worker that answered it, a number that looks right and is not."""
    if served and workers > 1 and multiprocess_dir() is None:
        raise ConfigError(
            f"{workers} workers serve /metrics: set {MULTIPROC_VARIABLE} to an empty directory "
            "they share (see docs/operations.md), else a scrape sees only one of them"
        )


class _Delegate(Collector):
    """The default registry's families (this process only) inside a scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_metrics(registry: CollectorRegistry) -> None:
    path = multiprocess_dir()
    if path is not None:
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Delegate())


async def scrape(sessionmaker: async_sessionmaker[AsyncSession]) -> bytes:
    """The text exposition format of everything Saassy measures."""
    snapshot: QueueSnapshot | None
    try:
        async with sessionmaker() as session:
            snapshot = await read_queue(session, utcnow())
    except Exception:  # the process's own metrics are still worth a scrape
        snapshot = None
    registry = CollectorRegistry(auto_describe=False)
    process_metrics(registry)
    registry.register(QueueCollector(snapshot))
    return generate_latest(registry)


def forget_process() -> None:
    """At exit: drop this process's live gauges from the directory (its counters stay)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
