"""An export's archive as a download: streamed through, or a redirect to a short-lived URL
of the bucket (as artifacts are)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import RedirectResponse, Response, StreamingResponse

from saassy.models import DataExport
from saassy.privacy.export_errors import ExportExpired
from saassy.storage.base import ArtifactStorage, ObjectNotFound


def archive_name(export: DataExport) -> str:
    kind = "account" if export.organization_id is None else "organization"
    return f"saassy-{kind}-export-{export.created_at:%Y%m%d}-{str(export.id)[:8]}.zip"


async def archive_download(storage: ArtifactStorage, export: DataExport) -> Response:
    """The archive's bytes, or a 307 to a presigned URL; 410 if its object is gone."""
    assert export.storage_key is not None
    if not await storage.exists(export.storage_key):
        raise ExportExpired()
    disposition = f'attachment; filename="{archive_name(export)}"'
    url = await storage.download_url(export.storage_key, disposition)
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    key = export.storage_key

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in storage.open(key):
                yield chunk
        except ObjectNotFound:  # removed after the check: the response is already under way
            return

    headers = {
        "Content-Disposition": disposition,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if export.size_bytes is not None:
        headers["Content-Length"] = str(export.size_bytes)
    if export.sha256:
        headers["ETag"] = f'"{export.sha256}"'
    return StreamingResponse(body(), media_type="application/zip", headers=headers)
