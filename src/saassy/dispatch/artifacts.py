"""Files the program left in its output dir, into artifact storage (regular files only).

An output is taken whole or not at all: past a limit of its task type or the organization's
storage quota nothing of it is stored, and the attempt says why. What is stored lives under the
attempt's keys (`{org}/{task}/{attempt}/{path}`) and becomes visible only with its rows, which
the outcome writes; when that write does not happen, `discard` removes the objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.outcome import AttemptOutcome
from saassy.dispatch.worker_output import RESULT_FILE, content_type
from saassy.models import Artifact, AttemptStatus
from saassy.quotas.storage import StorageQuota, StorageQuotaExceeded, kib
from saassy.runtime.artifacts import (
    ArtifactRefused,
    OutputLimits,
    OutputOverLimit,
    collect_artifacts,
    resolve_artifact,
)
from saassy.storage.base import ArtifactStorage
from saassy.storage.keys import artifact_key

log = structlog.get_logger(__name__)

OUTPUT_LIMIT = "output_limit"
STORAGE_QUOTA_EXCEEDED = "storage_quota_exceeded"


class OutputRefused(Exception):
    """The output passes a limit or the storage quota: none of it was kept. `code` is the
    task's error code (`output_limit`, `storage_quota_exceeded`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StoredOutput:
    """The rows of what was stored, for the outcome to insert, and what was left out, and why."""

    artifacts: list[Artifact] = field(default_factory=list)
    left_out: list[ArtifactRefused] = field(default_factory=list)


async def store_artifacts(
    storage: ArtifactStorage,
    ref: AttemptRef,
    output_dir: Path,
    limits: OutputLimits,
    quota: StorageQuota,
) -> StoredOutput:
    """Put every acceptable file in storage and return its rows, for the outcome to insert.

    Raises OutputRefused past `limits` or the organization's storage quota, with nothing stored
    and nothing counted. Refused names and file types are left out, logged, and do not fail it.
    """
    if not _holds_artifacts(output_dir):
        return StoredOutput()  # the common case: spare it the thread hop
    try:
        scan = await asyncio.to_thread(collect_artifacts, output_dir, limits)
    except OutputOverLimit as over:
        raise OutputRefused(OUTPUT_LIMIT, f"its output was not kept: it {over.message}") from None
    for refused in scan.refused:
        log.warning(
            "artifact refused",
            task_id=str(ref.task_id),
            path=refused.relative_path,
            reason=refused.reason,
        )
    files = [found for found in scan.files if found.relative_path != RESULT_FILE]
    taken = sum(kib(found.size) for found in files)
    try:
        await quota.take(ref.organization_id, taken)
    except StorageQuotaExceeded as exceeded:
        message = f"its output was not kept: {exceeded}"
        raise OutputRefused(STORAGE_QUOTA_EXCEEDED, message) from None
    stored: list[Artifact] = []
    try:
        for found in files:
            if (artifact := await _put(storage, ref, output_dir, found.relative_path)) is not None:
                stored.append(artifact)
    except BaseException:
        await discard(storage, stored, quota)
        await quota.give_back(ref.organization_id, taken - _kib_of(stored))
        raise
    await quota.give_back(ref.organization_id, taken - _kib_of(stored))
    return StoredOutput(stored, scan.refused)


async def _put(
    storage: ArtifactStorage, ref: AttemptRef, output_dir: Path, relative_path: str
) -> Artifact | None:
    key = artifact_key(ref.organization_id, ref.task_id, ref.attempt_number, relative_path)
    try:
        source = resolve_artifact(output_dir, relative_path)
        obj = await storage.put(key, source)
    except (ArtifactRefused, OSError):
        log.exception("artifact not stored", task_id=str(ref.task_id), path=relative_path)
        return None
    return Artifact(
        task_id=ref.task_id,
        organization_id=ref.organization_id,
        attempt_number=ref.attempt_number,
        path=relative_path,
        size_bytes=obj.size_bytes,
        sha256=obj.sha256,
        content_type=content_type(relative_path),
        storage_key=key,
    )


def _kib_of(artifacts: list[Artifact]) -> int:
    return sum(kib(artifact.size_bytes) for artifact in artifacts)


def _holds_artifacts(output_dir: Path) -> bool:
    try:
        with os.scandir(output_dir) as entries:
            return any(entry.name != RESULT_FILE for entry in entries)
    except FileNotFoundError:
        return False


def without_output(outcome: AttemptOutcome, refused: OutputRefused) -> AttemptOutcome:
    """The outcome of an attempt whose output was refused: a success fails (the same output
    would be refused again, so no retry); a failure keeps its own code and says both."""
    if outcome.status is AttemptStatus.succeeded:
        return replace(
            outcome,
            status=AttemptStatus.failed,
            error=refused.message,
            error_code=refused.code,
            result=None,
            retryable=False,
        )
    error = f"{outcome.error}; {refused.message}" if outcome.error else refused.message
    return replace(outcome, error=error)


async def discard(
    storage: ArtifactStorage, artifacts: list[Artifact], quota: StorageQuota | None = None
) -> None:
    """Remove stored objects whose rows will not be written, and give their size back."""
    for artifact in artifacts:
        with contextlib.suppress(Exception):  # what is left, the orphan sweep removes
            await storage.delete(artifact.storage_key)
    if quota is not None and artifacts:
        with contextlib.suppress(Exception):  # the sweep's recount corrects it
            await quota.give_back(artifacts[0].organization_id, _kib_of(artifacts))
