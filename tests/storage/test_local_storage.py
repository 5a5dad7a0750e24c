"""What only the local-directory storage does (the shared contract: test_storage_contract)."""

from __future__ import annotations

from pathlib import Path

from saassy.storage.local import LocalDirectoryStorage


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
