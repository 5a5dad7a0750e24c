"""The local-directory artifact storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from saassy.storage.base import ObjectNotFound, StorageKeyInvalid
from saassy.storage.local import LocalDirectoryStorage


async def test_put_open_delete(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path / "store")
    source = tmp_path / "file.bin"
    data = bytes(range(256)) * 1000
    source.write_bytes(data)

    stored = await storage.put("org/task/1/out/file.bin", source)

    assert (stored.size_bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert b"".join([chunk async for chunk in storage.open(stored.key)]) == data
    assert await storage.exists(stored.key)
    await storage.delete(stored.key)
    await storage.delete(stored.key)  # absent is fine
    assert not await storage.exists(stored.key)
    with pytest.raises(ObjectNotFound):
        [chunk async for chunk in storage.open(stored.key)]


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../../b", "a//b", "./a"])
async def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    storage = LocalDirectoryStorage(tmp_path / "store")
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(StorageKeyInvalid):
        await storage.put(key, source)


async def test_a_symlinked_source_is_refused(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path / "store")
    (tmp_path / "secret").write_bytes(b"host file")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(OSError, match=r"symbolic links|Too many levels"):
        await storage.put("a/link", tmp_path / "link")


async def test_a_name_of_255_bytes_is_stored_and_listed(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path / "store")
    source = tmp_path / "file"
    source.write_bytes(b"long")
    key = "org/task/1/" + "文" * 85  # 255 bytes in UTF-8: NAME_MAX
    stored = await storage.put(key, source)
    assert stored.size_bytes == 4
    assert await storage.keys() == [key]


async def test_deleting_the_last_object_removes_its_emptied_dirs(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path / "store")
    source = tmp_path / "file"
    source.write_bytes(b"x")
    await storage.put("org/task/1/a/b.txt", source)
    await storage.put("org/task/2/c.txt", source)
    await storage.delete("org/task/1/a/b.txt")
    assert not (tmp_path / "store/org/task/1").exists()
    assert await storage.keys() == ["org/task/2/c.txt"]
    assert (tmp_path / "store").is_dir()
