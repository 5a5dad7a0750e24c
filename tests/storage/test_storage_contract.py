"""What every artifact storage does, run against each backend: a local directory and S3
(`moto_server` on loopback)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from saassy.storage.base import ArtifactStorage, ObjectNotFound, StorageKeyInvalid
from saassy.storage.local import LocalDirectoryStorage
from saassy.storage.s3 import S3Storage
from tests.moto import location_in

FIVE_MIB = 5 * 1024 * 1024  # S3's smallest part (but the last)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStorage]:
    if request.param == "local":
        yield LocalDirectoryStorage(tmp_path / "store")
        return
    endpoint: str = request.getfixturevalue("moto_server")
    s3 = S3Storage(location_in(endpoint, prefix="tenants/"), part_bytes=FIVE_MIB)
    s3.list_page_size = 2  # so a listing of a few keys takes several pages
    yield s3


def file_of(tmp_path: Path, data: bytes, name: str = "file.bin") -> Path:
    source = tmp_path / name
    source.write_bytes(data)
    return source


async def read_all(storage: ArtifactStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


async def test_put_open_delete(storage: ArtifactStorage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    stored = await storage.put("org/task/1/out/file.bin", file_of(tmp_path, data))

    assert (stored.size_bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await read_all(storage, stored.key) == data
    assert await storage.exists(stored.key)
    await storage.delete(stored.key)
    await storage.delete(stored.key)  # absent is fine
    assert not await storage.exists(stored.key)
    with pytest.raises(ObjectNotFound):
        await read_all(storage, stored.key)


async def test_an_empty_file_is_an_empty_object(storage: ArtifactStorage, tmp_path: Path) -> None:
    stored = await storage.put("org/task/1/empty", file_of(tmp_path, b""))
    assert (stored.size_bytes, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await read_all(storage, "org/task/1/empty") == b""


async def test_put_replaces(storage: ArtifactStorage, tmp_path: Path) -> None:
    await storage.put("org/task/1/a", file_of(tmp_path, b"first"))
    await storage.put("org/task/1/a", file_of(tmp_path, b"second"))
    assert await read_all(storage, "org/task/1/a") == b"second"
    assert await storage.keys() == ["org/task/1/a"]


async def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    data = os.urandom(2 * FIVE_MIB + 12345)
    stored = await storage.put("org/task/1/big.bin", file_of(tmp_path, data))

    assert (stored.size_bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    chunks = [chunk async for chunk in storage.open(stored.key)]
    assert len(chunks) > 1  # streamed, not read whole
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == stored.sha256
    if isinstance(storage, S3Storage):
        head = storage._client.head_object(Bucket=storage.bucket, Key="tenants/" + stored.key)
        assert head["ETag"].strip('"').endswith("-3")  # three parts: a multipart upload


async def test_keys_lists_every_object(storage: ArtifactStorage, tmp_path: Path) -> None:
    source = file_of(tmp_path, b"x")
    keys = [f"org/task/{n}/out/f{n}.txt" for n in range(5)] + ["org/task/9/" + "文" * 85]
    for key in keys:
        await storage.put(key, source)
    assert sorted(await storage.keys()) == sorted(keys)


async def test_keys_with_a_prefix_lists_only_those(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    source = file_of(tmp_path, b"x")
    for key in ("org/task/1/a", "org/task/2/b", "org2/task/1/c", "other/org/1/d"):
        await storage.put(key, source)
    assert sorted(await storage.keys("org/")) == ["org/task/1/a", "org/task/2/b"]
    assert await storage.keys("org2/") == ["org2/task/1/c"]
    assert await storage.keys("none/") == []


async def test_a_missing_key(storage: ArtifactStorage) -> None:
    assert not await storage.exists("org/task/1/nothing")
    await storage.delete("org/task/1/nothing")
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "org/task/1/nothing")
    assert await storage.keys() == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../../b", "a//b", "./a", "a/"])
async def test_bad_keys_are_refused(storage: ArtifactStorage, tmp_path: Path, key: str) -> None:
    source = file_of(tmp_path, b"x")
    with pytest.raises(StorageKeyInvalid):
        await storage.put(key, source)
    with pytest.raises(StorageKeyInvalid):
        await storage.exists(key)
    with pytest.raises(StorageKeyInvalid):
        await storage.delete(key)
    with pytest.raises(StorageKeyInvalid):
        await read_all(storage, key)
    assert await storage.keys() == []


async def test_a_symlinked_source_is_refused(storage: ArtifactStorage, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"host file")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(OSError, match=r"symbolic links|Too many levels"):
        await storage.put("a/link", tmp_path / "link")
    assert await storage.keys() == []


async def test_a_download_url_serves_the_bytes_as_an_attachment(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    data = b"a,b\n1,2\n"
    await storage.put("org/task/1/report.csv", file_of(tmp_path, data))
    disposition = "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"

    url = await storage.download_url("org/task/1/report.csv", disposition)

    if isinstance(storage, LocalDirectoryStorage):
        assert url is None  # streamed through the API instead
        return
    assert url is not None
    assert "X-Amz-Expires=300" in url
    assert "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-disposition"] == disposition
    assert response.headers["content-type"] == "application/octet-stream"
