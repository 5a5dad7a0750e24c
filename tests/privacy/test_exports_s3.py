"""Exports on S3 (`moto_server` on loopback): the archive lands in the bucket, with the
artifacts read back from it, downloads through a presigned URL, and is deleted at expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.storage.s3 import S3Location, S3Storage
from tests.conftest import SignUp
from tests.privacy.support import Archive, build_exports, customer


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], s3_location: S3Location) -> Settings:
    assert s3_location.secret_access_key is not None
    return settings_factory(
        storage="s3",
        s3_bucket=s3_location.bucket,
        s3_prefix="saassy",
        s3_endpoint_url=s3_location.endpoint_url,
        s3_region=s3_location.region,
        s3_access_key_id=s3_location.access_key_id,
        s3_secret_access_key=s3_location.secret_access_key,
        s3_presign_expiry_s=120,
    )


async def test_an_export_is_built_from_and_into_the_bucket(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    tmp_path: Path,
    s3_location: S3Location,
) -> None:
    assert isinstance(ctx.storage, S3Storage)
    a = await customer(client, ctx, signup, "CANARY_S3", tmp_path)
    requested = await client.post("/api/v1/account/export", headers=a.headers)
    export_id = requested.json()["id"]
    assert (await build_exports(ctx)).built == 1

    bucket = s3_location.client(s3_location.endpoint_url)
    key = f"saassy/exports/{export_id}.zip"
    assert bucket.head_object(Bucket=s3_location.bucket, Key=key)["ContentLength"] > 0
    download = await client.get(f"/api/v1/account/exports/{export_id}/download", headers=a.headers)
    assert download.status_code == 307
    async with httpx.AsyncClient() as plain:  # the presigned URL is the only credential
        archive = Archive.of((await plain.get(download.headers["location"])).content)
    archive.check_manifest()
    artifact = archive.entries[f"files/tasks/{a.task_id}/artifacts/1/out/report.txt"]
    assert artifact == b"CANARY_S3 artifact body"

    later = utcnow() + timedelta(days=ctx.settings.export_expiry_days, minutes=1)
    assert (await build_exports(ctx, clock=lambda: later)).expired == 1
    listed = bucket.list_objects_v2(Bucket=s3_location.bucket, Prefix="saassy/exports/")
    assert listed.get("KeyCount", 0) == 0
