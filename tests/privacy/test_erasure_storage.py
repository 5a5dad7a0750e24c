"""The eraser deletes an erased organization's objects from either storage, and only those."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from saassy.context import AppContext
from saassy.privacy.erasure_jobs import AccountEraser
from saassy.storage.base import ArtifactStorage
from saassy.storage.keys import artifact_key
from saassy.storage.local import LocalDirectoryStorage
from saassy.storage.s3 import S3Storage
from tests.conftest import SignUp
from tests.moto import location_in


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStorage]:
    if request.param == "local":
        yield LocalDirectoryStorage(tmp_path / "store")
        return
    endpoint: str = request.getfixturevalue("moto_server")
    s3 = S3Storage(location_in(endpoint, prefix=f"erase-{uuid.uuid4().hex[:8]}/"))
    s3.list_page_size = 2  # several pages
    yield s3


async def test_only_the_erased_organizations_objects_go(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    storage: ArtifactStorage,
    tmp_path: Path,
) -> None:
    ada, bob = await signup(), await signup()
    source = tmp_path / "out.txt"
    source.write_text("output")
    for account in (ada, bob):
        for n in range(3):
            key = artifact_key(uuid.UUID(account.organization_id), uuid.uuid4(), 1, f"f{n}.txt")
            await storage.put(key, source)
    await storage.put(f"{ada.organization_id}/{uuid.uuid4()}/1/.partial-x", source)

    accepted = await client.post(
        "/api/v1/account/deletion", json={"password": ada.password}, headers=ada.headers
    )
    assert accepted.status_code == 202
    [erased] = await AccountEraser(ctx.sessionmaker, ctx.settings, storage).erase_due()

    assert erased.stored_objects == 4
    assert await storage.keys(f"{ada.organization_id}/") == []
    assert len(await storage.keys(f"{bob.organization_id}/")) == 3
