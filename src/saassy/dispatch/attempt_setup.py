"""What one attempt runs with: built from the task row and its type in the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from saassy.models import Task
from saassy.plans.catalog import Catalog
from saassy.runtime.base import Limits
from saassy.tasks.catalog import DEFAULT_MAX_UNIT_NAMES, TaskType
from saassy.tasks.workers import workers_dir


class TaskTypeGone(Exception):
    """The task's type is no longer in the catalog."""


@dataclass(frozen=True)
class AttemptSetup:
    task_type: TaskType
    argv: tuple[str, ...]  # empty for an image-only type: the image's own command runs
    limits: Limits
    image: str | None = None
    network: bool = False
    network_allow: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    max_unit_names: int = DEFAULT_MAX_UNIT_NAMES


def attempt_setup(catalog: Catalog, task: Task, workers: Path | None = None) -> AttemptSetup:
    """The argv, limits and permissions of the task's type; the timeout is the task's own."""
    task_type = catalog.task_type(task.type)
    if task_type is None:
        raise TaskTypeGone(f"task type {task.type!r} is no longer offered")
    resources = task_type.resources
    return AttemptSetup(
        task_type=task_type,
        argv=task_type.argv(workers or workers_dir()) if task_type.command is not None else (),
        image=task_type.image,
        limits=Limits(
            memory_mb=resources.memory_mb,
            cpus=resources.cpus,
            pids=resources.pids,
            disk_mb=resources.disk_mb,
            timeout_s=task.timeout_s,
        ),
        network=task_type.network,
        network_allow=task_type.network_allow,
        actions=task_type.actions,
        max_unit_names=task_type.max_unit_names,
    )
