"""Which of the catalog's task types this host's runtime will refuse, and why (for operators).

Said once per type at start by `saassy dev`, `api` and `worker`, so a missing program or network
shows before any task; the rest of the catalog keeps running (docs/operators.md).
"""

from __future__ import annotations

from pathlib import Path

import structlog

from saassy.plans.catalog import Catalog
from saassy.runtime.base import Runtime
from saassy.tasks.catalog import TaskType
from saassy.tasks.workers import workers_dir

log = structlog.get_logger(__name__)


def program_refusal(runtime: Runtime, task_type: TaskType, workers: Path | None) -> str | None:
    """Why `task_type`'s program cannot start here (None: it can, or it runs an image);
    `workers` is `{workers}` (default: the example programs' dir)."""
    if task_type.command is None:
        return None
    return runtime.program_refusal(task_type.argv(workers or workers_dir()))


def refusals(runtime: Runtime, catalog: Catalog, workers: Path | None) -> dict[str, str]:
    """Each task type this host refuses, by name, with why."""
    refused = {}
    for name, task_type in sorted(catalog.task_types.items()):
        why = runtime.refusal_for(network=task_type.network) or program_refusal(
            runtime, task_type, workers
        )
        if why is not None:
            refused[name] = why
    return refused


def warn_refused(runtime: Runtime, catalog: Catalog, workers: Path | None) -> None:
    """One warning line per task type this host refuses."""
    for name, why in refusals(runtime, catalog, workers).items():
        log.warning("engine.task_type_refused_here", task_type=name, why=why)
