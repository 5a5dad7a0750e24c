"""Checks of the artifact storage settings (`SAASSY_STORAGE`, `SAASSY_S3_*`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from saassy.config.choices import StorageKind

if TYPE_CHECKING:
    from saassy.config.settings import Settings


def key_prefix(value: str) -> str:
    """Stored as `dir/` (or empty), so keys under it are `dir/<org>/...`."""
    stripped = value.strip("/")
    if stripped and any(part in ("", ".", "..") for part in stripped.split("/")):
        raise ValueError(f"{value!r} is not a key prefix: write e.g. 'saassy/artifacts'")
    return f"{stripped}/" if stripped else ""


def http_url(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^/@\s]+/?", value):
        raise ValueError(
            "write the server's address alone, e.g. 'http://minio:9000' (the bucket goes "
            "in SAASSY_S3_BUCKET, credentials in SAASSY_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY)"
        )
    return value.rstrip("/") if value is not None else None


def whole_s3_configuration(settings: Settings) -> Settings:
    if settings.storage is StorageKind.s3:
        if not settings.s3_bucket:
            raise ValueError(
                "SAASSY_STORAGE=s3 needs SAASSY_S3_BUCKET, the bucket artifacts are kept in"
            )
        if (settings.s3_access_key_id is None) != (settings.s3_secret_access_key is None):
            raise ValueError(
                "set both SAASSY_S3_ACCESS_KEY_ID and SAASSY_S3_SECRET_ACCESS_KEY, or "
                "neither (boto3 then finds credentials in AWS_* variables or a role)"
            )
        return settings
    ignored = sorted(
        f"SAASSY_{name.upper()}"
        for name in settings.model_fields_set
        if name.startswith("s3_") and getattr(settings, name) not in (None, "")
    )
    if ignored:
        raise ValueError(
            f"{', '.join(ignored)} set but SAASSY_STORAGE is local: set SAASSY_STORAGE=s3 "
            "to store artifacts in S3, or unset them"
        )
    return settings
