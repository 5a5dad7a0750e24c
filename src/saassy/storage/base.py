"""The artifact storage interface: keys are relative POSIX paths chosen by the platform."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHUNK_BYTES = 64 * 1024
PARTIAL_PREFIX = ".partial-"  # an object being written; a crash may leave one


class StorageKeyInvalid(ValueError):
    """A key that is empty, absolute or climbs out with `..`."""


class ObjectNotFound(LookupError):
    """No object under this key."""


class StorageUnavailable(Exception):
    """The storage cannot be used (a bucket that does not answer); the message says why."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


def checked_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("..", ".", "") for part in key.split("/")):
        raise StorageKeyInvalid(f"invalid storage key {key!r}")
    return path


class ArtifactStorage(abc.ABC):
    name: str

    @abc.abstractmethod
    async def put(self, key: str, source: Path) -> StoredObject:
        """Store the file at `source` under `key` (replacing), returning its size and digest."""

    @abc.abstractmethod
    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; ObjectNotFound if absent (raised on first iteration)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; absent keys are fine."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def keys(self, prefix: str = "") -> list[str]:
        """Every key stored that starts with `prefix`, partial writes a crash left included (for
        the orphan sweep, and an erased organization's `{organization}/`)."""

    async def check(self) -> None:  # noqa: B027 - nothing to check is a fine default
        """Raise StorageUnavailable if the storage cannot be used; called once at start."""

    async def download_url(self, key: str, content_disposition: str) -> str | None:
        """A short-lived URL a client may fetch the object from without credentials, served
        with `content_disposition`; None where downloads stream through the API instead."""
        return None
