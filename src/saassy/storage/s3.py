"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, ...) through boto3.

boto3 blocks, so every call runs in a thread; large files go up in parts through boto3's
transfer manager. An object appears under its key only once whole: a failed multipart upload
is aborted, and the parts of one a crash interrupted never show as a key (a bucket lifecycle
rule removes them: docs/storage.md). Downloads go straight from the bucket through presigned
URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from saassy.storage.base import (
    CHUNK_BYTES,
    ArtifactStorage,
    ObjectNotFound,
    StorageUnavailable,
    StoredObject,
    checked_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_BYTES = 8 * 1024 * 1024
# Parts are read into memory one after the other (the digest needs one pass): at most this many.
PARTS_IN_MEMORY = 4
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class S3Location:
    """Where and how to reach the bucket; credentials None means boto3's own chain
    (AWS_* variables, ~/.aws, an instance or pod role)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    # The address clients download from, when it differs from the one this host reaches.
    public_endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    presign_expiry_s: int = 300

    def client(self, endpoint_url: str | None) -> S3Client:
        # S3-compatible servers (MinIO) rarely answer on bucket subdomains; AWS does both.
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint_url else {"addressing_style": "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=config,
        )


class S3Storage(ArtifactStorage):
    name = "s3"
    list_page_size = 1000  # S3's own maximum per listing request

    def __init__(self, location: S3Location, *, part_bytes: int = PART_BYTES) -> None:
        self.location = location
        self.bucket = location.bucket
        self._prefix = location.prefix
        self._client = location.client(location.endpoint_url)
        public = location.public_endpoint_url
        self._signer = location.client(public) if public else self._client
        self._transfer = TransferConfig(
            multipart_threshold=part_bytes,
            multipart_chunksize=part_bytes,
            max_concurrency=PARTS_IN_MEMORY,
            preferred_transfer_client="classic",
        )
        self._transfer.max_in_memory_upload_chunks = PARTS_IN_MEMORY

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self._prefix!r})"

    def _object(self, key: str) -> str:
        return self._prefix + checked_key(key).as_posix()

    async def check(self) -> None:
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            where = self.location.endpoint_url or "AWS S3"
            raise StorageUnavailable(
                f"the S3 bucket {self.bucket!r} at {where} cannot be used: {_reason(exc)} "
                "(check SAASSY_S3_BUCKET, SAASSY_S3_ENDPOINT_URL and the credentials)"
            ) from None

    async def put(self, key: str, source: Path) -> StoredObject:
        name = self._object(key)
        return await asyncio.to_thread(self._upload, key, name, source)

    def _upload(self, key: str, name: str, source: Path) -> StoredObject:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            reader = _DigestingReader(file)
            self._client.upload_fileobj(
                cast("BinaryIO", reader),
                self.bucket,
                name,
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=self._transfer,
            )
        return StoredObject(key=key, size_bytes=reader.size, sha256=reader.digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        name = self._object(key)
        try:
            response = await asyncio.to_thread(
                self._client.get_object, Bucket=self.bucket, Key=name
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        name = self._object(key)
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=name)

    async def exists(self, key: str) -> bool:
        name = self._object(key)
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def keys(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._keys, prefix)

    def _keys(self, prefix: str) -> list[str]:
        found = []
        pages = self._client.get_paginator("list_objects_v2")
        for page in pages.paginate(
            Bucket=self.bucket,
            Prefix=self._prefix + prefix,
            PaginationConfig={"PageSize": self.list_page_size},
        ):
            for entry in page.get("Contents", []):
                found.append(entry["Key"].removeprefix(self._prefix))
        return found

    async def download_url(self, key: str, content_disposition: str) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": self._object(key),
            "ResponseContentDisposition": content_disposition,
            "ResponseContentType": "application/octet-stream",
        }
        # Signing may fetch credentials (an instance role): not on the event loop.
        return await asyncio.to_thread(
            self._signer.generate_presigned_url,
            "get_object",
            Params=params,
            ExpiresIn=self.location.presign_expiry_s,
        )


class _DigestingReader:
    """The file as boto3 reads it, counted and hashed on the way. Not seekable, so the
    transfer manager reads it once, in order, and the digest covers exactly what was sent."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "") in _MISSING


def _reason(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING:
            return "no such bucket"
        if status == 403 or code in ("403", "AccessDenied", "Forbidden"):
            return "access denied"
        return error.get("Message") or code or str(exc)
    return str(exc)
