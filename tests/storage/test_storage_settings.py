"""Choosing the storage: `SAASSY_STORAGE` and `SAASSY_S3_*`, refused when half set; a bucket
that cannot be used stops start-up with one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from saassy.app import create_app
from saassy.config import ConfigError, Settings, load_settings
from saassy.storage.base import StorageUnavailable
from saassy.storage.local import LocalDirectoryStorage
from saassy.storage.s3 import S3Storage
from saassy.storage.select import build_storage
from tests.conftest import TEST_SECRET
from tests.test_cli import invoke

SECRET = "s3-secret-never-shown"


pytestmark = pytest.mark.usefixtures("clean_environment")


def test_local_is_the_default(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    storage = build_storage(settings)
    assert isinstance(storage, LocalDirectoryStorage)
    assert storage.root == (tmp_path / "data" / "artifacts").resolve()


def test_s3_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_STORAGE", "s3")
    monkeypatch.setenv("SAASSY_S3_BUCKET", "artifacts")
    monkeypatch.setenv("SAASSY_S3_PREFIX", "/saassy/prod/")
    monkeypatch.setenv("SAASSY_S3_ENDPOINT_URL", "http://minio:9000/")
    monkeypatch.setenv("SAASSY_S3_PUBLIC_ENDPOINT_URL", "https://files.example.com")
    monkeypatch.setenv("SAASSY_S3_REGION", "eu-west-1")
    monkeypatch.setenv("SAASSY_S3_ACCESS_KEY_ID", "minio")
    monkeypatch.setenv("SAASSY_S3_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("SAASSY_S3_PRESIGN_EXPIRY_S", "60")

    settings = load_settings()
    storage = build_storage(settings)

    assert isinstance(storage, S3Storage)
    assert storage.location.bucket == "artifacts"
    assert storage.location.prefix == "saassy/prod/"
    assert storage.location.endpoint_url == "http://minio:9000"
    assert storage.location.public_endpoint_url == "https://files.example.com"
    assert storage.location.region == "eu-west-1"
    assert storage.location.presign_expiry_s == 60
    assert SECRET not in repr(settings) + repr(storage) + repr(storage.location)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SAASSY_STORAGE": "s3"}, "SAASSY_STORAGE=s3 needs SAASSY_S3_BUCKET"),
        ({"SAASSY_STORAGE": "gcs"}, "SAASSY_STORAGE: Input should be 'local' or 's3'"),
        (
            {"SAASSY_S3_BUCKET": "artifacts"},
            "SAASSY_S3_BUCKET set but SAASSY_STORAGE is local",
        ),
        (
            {"SAASSY_STORAGE": "s3", "SAASSY_S3_BUCKET": "a", "SAASSY_S3_ACCESS_KEY_ID": "k"},
            "set both SAASSY_S3_ACCESS_KEY_ID and SAASSY_S3_SECRET_ACCESS_KEY, or neither",
        ),
        (
            {"SAASSY_STORAGE": "s3", "SAASSY_S3_BUCKET": "a", "SAASSY_S3_ENDPOINT_URL": "minio"},
            "SAASSY_S3_ENDPOINT_URL: write the server's address alone",
        ),
        (
            {
                "SAASSY_STORAGE": "s3",
                "SAASSY_S3_BUCKET": "a",
                "SAASSY_S3_ENDPOINT_URL": f"http://key:{SECRET}@minio:9000",
            },
            "SAASSY_S3_ENDPOINT_URL: write the server's address alone",
        ),
        (
            {"SAASSY_STORAGE": "s3", "SAASSY_S3_BUCKET": "a", "SAASSY_S3_PREFIX": "a/../b"},
            "SAASSY_S3_PREFIX: 'a/../b' is not a key prefix",
        ),
        (
            {"SAASSY_STORAGE": "s3", "SAASSY_S3_BUCKET": "a", "SAASSY_S3_PRESIGN_EXPIRY_S": "0"},
            "SAASSY_S3_PRESIGN_EXPIRY_S: Input should be greater than or equal to 1",
        ),
    ],
)
def test_a_half_or_wrong_configuration_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    text = str(refused.value)
    assert message in text
    assert "\n" not in text
    assert SECRET not in text


async def test_the_app_does_not_start_on_a_bucket_it_cannot_use(
    settings_factory: Callable[..., Settings], moto_server: str
) -> None:
    settings = settings_factory(
        storage="s3",
        s3_bucket="no-such-bucket",
        s3_endpoint_url=moto_server,
        s3_region="us-east-1",
        s3_access_key_id="test-key-id",
        s3_secret_access_key=SECRET,
    )
    app = create_app(settings, background=False)
    with pytest.raises(StorageUnavailable, match=r"'no-such-bucket'.*no such bucket"):
        async with app.router.lifespan_context(app):
            pass


def test_saassy_api_names_the_bucket_in_one_line(
    tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("saassy.server.uvicorn.run", lambda *_, **options: served.append(options))
    url = f"sqlite:///{tmp_path / 'saassy.db'}"
    assert invoke("db", "upgrade", env={"SAASSY_DATABASE_URL": url}).exit_code == 0
    result = invoke(
        "api",
        env={
            "SAASSY_DATABASE_URL": url,
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_STORAGE": "s3",
            "SAASSY_S3_BUCKET": "no-such-bucket",
            "SAASSY_S3_ENDPOINT_URL": moto_server,
            "SAASSY_S3_REGION": "us-east-1",
            "SAASSY_S3_ACCESS_KEY_ID": "test-key-id",
            "SAASSY_S3_SECRET_ACCESS_KEY": SECRET,
        },
    )
    assert result.exit_code == 1
    assert result.output == (
        f"error: the S3 bucket 'no-such-bucket' at {moto_server} cannot be used: no such "
        "bucket (check SAASSY_S3_BUCKET, SAASSY_S3_ENDPOINT_URL and the credentials)\n"
    )
    assert served == []
