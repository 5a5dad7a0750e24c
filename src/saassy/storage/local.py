"""Artifacts as files under one directory (the embedded default: `<data_dir>/artifacts`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from saassy.storage.base import (
    CHUNK_BYTES,
    PARTIAL_PREFIX,
    ArtifactStorage,
    ObjectNotFound,
    StoredObject,
    checked_key,
)


class LocalDirectoryStorage(ArtifactStorage):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*checked_key(key).parts)

    async def put(self, key: str, source: Path) -> StoredObject:
        target = self._path(key)
        return await asyncio.to_thread(self._copy, key, source, target)

    @staticmethod
    def _copy(key: str, source: Path, target: Path) -> StoredObject:
        # Not derived from the name: a 255-byte name plus any suffix would pass NAME_MAX.
        partial = target.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        size = 0
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            with os.fdopen(fd, "rb") as reader, _create(partial) as writer:
                while chunk := reader.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
            # Readers see the whole object or none of it.
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size_bytes=size, sha256=digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self._path(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        # The dirs it leaves empty go too, up to the root, or the sweeps would walk them forever.
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                return
            try:
                parent.rmdir()
            except OSError:  # not empty (or gone): its ancestors are not empty either
                return

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _keys(self, prefix: str) -> list[str]:
        found = []
        # Only the directory the prefix names is walked (`{organization}/` is one directory).
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(head) if head else self.root
        for directory, _dirs, files in os.walk(start):
            for name in files:
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return found


def _create(path: Path) -> BinaryIO:
    """A new file at `path`, its dirs made; again if a delete removed an emptied dir meanwhile."""
    for _ in range(3):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "xb")
        except FileNotFoundError:
            continue
    return open(path, "xb")
