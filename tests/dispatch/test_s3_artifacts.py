"""End to end on S3: a task's artifacts land in the bucket (`moto_server` on loopback), and
the API and the dashboard answer a download with a redirect to a presigned URL of the same
bytes; another tenant still gets 404."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.runtime.fake import FakeRuntime, FakeScript
from saassy.storage.s3 import S3Location, S3Storage
from tests.conftest import SignUp, client_for
from tests.dispatch.conftest import CATALOG
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.organizations.support import create_api_key
from tests.processes import serving
from tests.test_cli import invoke
from tests.web.support import browser_for, sign_up

FILES = {"report.csv": b"a,b\n1,2\n", "data/blob.bin": bytes(range(256)) * 4000}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], s3_location: S3Location) -> Settings:
    assert s3_location.secret_access_key is not None
    return settings_factory(
        config=CATALOG,
        storage="s3",
        s3_bucket=s3_location.bucket,
        s3_prefix="artifacts",
        s3_endpoint_url=s3_location.endpoint_url,
        s3_region=s3_location.region,
        s3_access_key_id=s3_location.access_key_id,
        s3_secret_access_key=s3_location.secret_access_key,
        s3_presign_expiry_s=120,
    )


async def run_task(
    ctx: AppContext, engine: TaskEngine, runtime: FakeRuntime, organization_id: uuid.UUID
) -> uuid.UUID:
    task_id = uuid.uuid4()
    runtime.script(f"task-{task_id}-attempt-1", FakeScript(files=FILES))
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, organization_id, task_ids=[task_id])
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])
    return task_id


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as plain:  # no credentials of ours: the URL is enough
        return await plain.get(url)


async def test_artifacts_land_in_the_bucket_and_download_through_presigned_urls(
    app: FastAPI,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
    s3_location: S3Location,
) -> None:
    assert isinstance(ctx.storage, S3Storage)
    assert isinstance(engine.storage, S3Storage)
    owner, stranger = await signup(), await signup()
    task_id = await run_task(ctx, engine, fake_runtime, owner.organization_id)

    bucket = s3_location.client(s3_location.endpoint_url)
    listed = bucket.list_objects_v2(Bucket=s3_location.bucket)["Contents"]
    prefix = f"artifacts/{owner.organization_id}/{task_id}/1/"
    assert sorted(entry["Key"] for entry in listed) == sorted(prefix + path for path in FILES)

    async with client_for(app) as client:
        listing = await client.get(f"/api/v1/tasks/{task_id}/artifacts", headers=owner.headers)
        items = listing.json()["items"]
        assert sorted(item["path"] for item in items) == sorted(FILES)
        for item in items:
            path = f"/api/v1/tasks/{task_id}/artifacts/{item['id']}"
            response = await client.get(path, headers=owner.headers)
            assert response.status_code == 307
            assert response.headers["cache-control"] == "no-store"
            url = response.headers["location"]
            assert url.startswith(f"{s3_location.endpoint_url}/{s3_location.bucket}/{prefix}")
            assert "X-Amz-Expires=120" in url

            download = await fetch(url)
            assert download.status_code == 200
            assert download.content == FILES[item["path"]]
            assert hashlib.sha256(download.content).hexdigest() == item["sha256"]
            name = item["path"].rsplit("/", 1)[-1]
            assert download.headers["content-disposition"].startswith(
                f'attachment; filename="{name}"'
            )

            refused = await client.get(path, headers=stranger.headers)
            assert refused.status_code == 404
            assert "location" not in refused.headers
        missing = await client.get(
            f"/api/v1/tasks/{task_id}/artifacts/{uuid.uuid4()}", headers=owner.headers
        )
        assert missing.status_code == 404


async def test_an_artifact_gone_from_the_bucket_is_404_not_a_dead_link(
    app: FastAPI, ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    owner = await signup()
    task_id = await run_task(ctx, engine, fake_runtime, owner.organization_id)
    async with client_for(app) as client:
        listing = await client.get(f"/api/v1/tasks/{task_id}/artifacts", headers=owner.headers)
        [item, *_] = listing.json()["items"]
        await ctx.storage.delete(f"{owner.organization_id}/{task_id}/1/{item['path']}")
        path = f"/api/v1/tasks/{task_id}/artifacts/{item['id']}"
        response = await client.get(path, headers=owner.headers)
    assert response.status_code == 404


async def test_the_dashboard_download_redirects_to_the_bucket(
    app: FastAPI, ctx: AppContext, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        home = await browser.get("/app")
        found = re.search(r'<option value="([0-9a-f-]{36})" selected>', home.text)
        assert found, home.text
        task_id = await run_task(ctx, engine, fake_runtime, uuid.UUID(found.group(1)))
        page = await browser.get(f"/app/tasks/{task_id}")
        link = re.search(r'href="(/app/tasks/[^"]+/artifacts/[0-9a-f-]{36})" download', page.text)
        assert link, page.text
        response = await browser.get(link.group(1))
        assert response.status_code == 307
        download = await fetch(response.headers["location"])
        assert download.content in FILES.values()

        async with browser_for(app) as other:
            await sign_up(other)
            refused = await other.get(link.group(1))
            assert refused.status_code == 404


async def test_the_cli_downloads_from_the_bucket_and_checks_the_digest(
    app: FastAPI,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no stored login
    owner = await signup()
    task_id = await run_task(ctx, engine, fake_runtime, owner.organization_id)
    async with client_for(app) as client:
        key = (await create_api_key(client, owner))["key"]
    target = tmp_path / "downloads"
    async with serving(app) as url:
        env = {"SAASSY_API_URL": url, "SAASSY_API_KEY": key}
        result = await asyncio.to_thread(
            invoke, "tasks", "download", str(task_id), "--to", str(target), env=env
        )
    assert result.exit_code == 0, result.output
    for path, data in FILES.items():
        assert (target / path).read_bytes() == data
