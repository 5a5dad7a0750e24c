"""What only the S3 storage does: failed uploads leave nothing, the bucket check, the prefix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saassy.storage import s3
from saassy.storage.base import StorageUnavailable
from saassy.storage.s3 import S3Location, S3Storage
from tests.moto import location_in

FIVE_MIB = 5 * 1024 * 1024


async def test_a_failed_multipart_upload_leaves_no_object_and_no_parts(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = S3Storage(location_in(moto_server), part_bytes=FIVE_MIB)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * FIVE_MIB))
    read = s3._DigestingReader.read

    def failing_read(self: s3._DigestingReader, size: int = -1) -> bytes:
        if self.size >= FIVE_MIB:  # the first part is on its way
            raise OSError("disk gone")
        return read(self, size)

    monkeypatch.setattr(s3._DigestingReader, "read", failing_read)
    with pytest.raises(OSError, match="disk gone"):
        await storage.put("org/task/1/big.bin", source)

    assert not await storage.exists("org/task/1/big.bin")
    assert await storage.keys() == []
    uploads = storage._client.list_multipart_uploads(Bucket=storage.bucket)
    assert uploads.get("Uploads", []) == []  # aborted, not left to cost storage


async def test_keys_stay_under_the_prefix(moto_server: str, tmp_path: Path) -> None:
    mine = location_in(moto_server, prefix="saassy/")
    storage = S3Storage(mine)
    client = mine.client(moto_server)
    client.put_object(Bucket=mine.bucket, Key="other-app/file", Body=b"not ours")
    source = tmp_path / "f"
    source.write_bytes(b"ours")

    await storage.put("org/task/1/f", source)

    assert await storage.keys() == ["org/task/1/f"]
    listed = client.list_objects_v2(Bucket=mine.bucket)["Contents"]
    assert sorted(entry["Key"] for entry in listed) == ["other-app/file", "saassy/org/task/1/f"]


async def test_a_missing_bucket_is_named_at_the_check(moto_server: str) -> None:
    location = S3Location(
        bucket="no-such-bucket",
        endpoint_url=moto_server,
        region="us-east-1",
        access_key_id="test-key-id",
        secret_access_key="a-secret-value",
    )
    storage = S3Storage(location)
    with pytest.raises(StorageUnavailable) as refused:
        await storage.check()
    message = str(refused.value)
    assert "'no-such-bucket'" in message
    assert moto_server in message
    assert "no such bucket" in message
    assert "a-secret-value" not in message + repr(storage) + repr(location)


async def test_an_unreachable_endpoint_is_named_at_the_check() -> None:
    location = S3Location(
        bucket="artifacts",
        endpoint_url="http://127.0.0.1:9",  # discard: nothing listens
        region="us-east-1",
        access_key_id="test-key-id",
        secret_access_key="a-secret-value",
    )
    with pytest.raises(StorageUnavailable, match=r"'artifacts' at http://127.0.0.1:9"):
        await S3Storage(location).check()


async def test_a_reachable_bucket_passes_the_check(s3_location: S3Location) -> None:
    await S3Storage(s3_location).check()


async def test_presigned_urls_name_the_public_endpoint(moto_server: str) -> None:
    location = location_in(moto_server, public_endpoint_url="https://files.example.com")
    url = await S3Storage(location).download_url("org/task/1/a.txt", "attachment")
    assert url is not None
    assert url.startswith(f"https://files.example.com/{location.bucket}/org/task/1/a.txt?")
