"""An artifact download: streamed through, or a redirect to a short-lived URL of the bucket;
with a name any client shows, and no header a name can break."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi.responses import RedirectResponse, Response, StreamingResponse

from saassy.kit.errors import NotFound
from saassy.models import Artifact
from saassy.storage.base import ArtifactStorage, ObjectNotFound

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._ -]+")


def content_disposition(path: str) -> str:
    """`attachment` with an ASCII `filename` and the exact name in `filename*` (RFC 6266, 5987).

    Both are built from allowed characters only, so a name holding quotes, CR/LF or any other
    control character can never end or split the header.
    """
    name = path.rsplit("/", 1)[-1]
    # Accents fold away (café -> cafe); other letters become one "_" each, so `文件.txt`
    # still has a name before its extension.
    folded = "".join(
        char if char.isascii() else "" if unicodedata.combining(char) else "_"
        for char in unicodedata.normalize("NFKD", name)
    )
    fallback = _NOT_PLAIN.sub("_", folded).strip(" ") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def artifact_download(storage: ArtifactStorage, artifact: Artifact) -> Response:
    """The artifact's bytes as a download (never rendered: the content came from customer
    code), or a 307 to a presigned URL that serves them so; 404 if its object is gone."""
    if not await storage.exists(artifact.storage_key):
        raise NotFound("Artifact")
    disposition = content_disposition(artifact.path)
    url = await storage.download_url(artifact.storage_key, disposition)
    if url is not None:
        # The URL is a bearer credential for a few minutes: no cache may keep it.
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in storage.open(artifact.storage_key):
                yield chunk
        except ObjectNotFound:  # deleted after the check: the response is already under way
            return

    headers = {
        "Content-Length": str(artifact.size_bytes),
        "Content-Disposition": disposition,
        "ETag": f'"{artifact.sha256}"',
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)
