"""The artifact storage the settings ask for (boto3 is imported only when S3 is)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saassy.storage.base import ArtifactStorage
from saassy.storage.local import LocalDirectoryStorage

if TYPE_CHECKING:
    from saassy.config import Settings


def build_storage(settings: Settings) -> ArtifactStorage:
    """`<data dir>/artifacts`, or the bucket of `SAASSY_S3_*` with `SAASSY_STORAGE=s3`."""
    if settings.storage == "local":
        return LocalDirectoryStorage(settings.data_dir / "artifacts")
    from saassy.storage.s3 import S3Location, S3Storage

    assert settings.s3_bucket is not None  # refused at load otherwise
    secret = settings.s3_secret_access_key
    return S3Storage(
        S3Location(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            presign_expiry_s=settings.s3_presign_expiry_s,
        )
    )
