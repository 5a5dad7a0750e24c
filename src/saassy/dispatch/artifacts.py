"""Files the program left in its output dir, into artifact storage (regular files only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import structlog

from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.worker_output import RESULT_FILE, content_type
from saassy.models import Artifact
from saassy.runtime.artifacts import collect_artifacts, resolve_artifact
from saassy.storage.base import ArtifactStorage

log = structlog.get_logger(__name__)

MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024


def artifact_key(ref: AttemptRef, relative_path: str) -> str:
    return f"{ref.organization_id}/{ref.task_id}/{ref.attempt_number}/{relative_path}"


async def store_artifacts(
    storage: ArtifactStorage, ref: AttemptRef, output_dir: Path
) -> list[Artifact]:
    """Put every acceptable file in storage; the rows are inserted with the outcome."""
    if not _holds_artifacts(output_dir):
        return []  # the common case: spare it the thread hop
    scan = await asyncio.to_thread(
        collect_artifacts, output_dir, max_total_bytes=MAX_ARTIFACT_BYTES
    )
    for refused in scan.refused:
        log.warning(
            "artifact refused",
            task_id=str(ref.task_id),
            path=refused.relative_path,
            reason=refused.reason,
        )
    stored: list[Artifact] = []
    for found in scan.files:
        if found.relative_path == RESULT_FILE:
            continue  # kept on the task itself
        key = artifact_key(ref, found.relative_path)
        try:
            source = resolve_artifact(output_dir, found.relative_path)
            obj = await storage.put(key, source)
        except Exception:
            log.exception("artifact not stored", task_id=str(ref.task_id), path=found.relative_path)
            continue
        stored.append(
            Artifact(
                task_id=ref.task_id,
                organization_id=ref.organization_id,
                attempt_number=ref.attempt_number,
                path=found.relative_path,
                size_bytes=obj.size_bytes,
                sha256=obj.sha256,
                content_type=content_type(found.relative_path),
                storage_key=key,
            )
        )
    return stored


def _holds_artifacts(output_dir: Path) -> bool:
    try:
        with os.scandir(output_dir) as entries:
            return any(entry.name != RESULT_FILE for entry in entries)
    except FileNotFoundError:
        return False


async def discard(storage: ArtifactStorage, artifacts: list[Artifact]) -> None:
    for artifact in artifacts:
        with contextlib.suppress(Exception):
            await storage.delete(artifact.storage_key)
