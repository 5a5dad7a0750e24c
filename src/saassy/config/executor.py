"""Checks of the executor settings: what `SAASSY_EXECUTOR=celery` needs of its broker."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from saassy.config.choices import Environment, ExecutorKind, StorageKind

if TYPE_CHECKING:
    from saassy.config.settings import Settings

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
BROKER_SETTINGS = ("broker_url", "broker_queue", "broker_visibility_timeout_s")


def broker_for_celery(settings: Settings) -> Settings:
    if settings.executor is not ExecutorKind.celery:
        given = [name for name in BROKER_SETTINGS if name in settings.model_fields_set]
        if given:
            names = ", ".join(f"SAASSY_{name.upper()}" for name in given)
            raise ValueError(f"{names} only apply with SAASSY_EXECUTOR=celery")
        return settings
    if settings.broker_url is None:
        raise ValueError(
            "SAASSY_EXECUTOR=celery needs SAASSY_BROKER_URL (redis://... or amqp://...)"
        )
    scheme = urlsplit(settings.broker_url.get_secret_value()).scheme.lower()
    if scheme not in BROKER_SCHEMES:
        raise ValueError(
            f"SAASSY_BROKER_URL: {scheme or 'no'} scheme is not a broker Saassy supports: "
            "use redis://, rediss://, amqp:// or amqps://"
        )
    if settings.env is Environment.production:
        # Workers on other hosts share neither this process's memory nor its data dir.
        if settings.redis_url is None:
            raise ValueError(
                "SAASSY_EXECUTOR=celery needs SAASSY_REDIS_URL in production: live logs and "
                "statuses reach the API processes over Redis"
            )
        if settings.storage is StorageKind.local:
            raise ValueError(
                "SAASSY_EXECUTOR=celery needs SAASSY_STORAGE=s3 in production: artifacts "
                "written by workers must be where every API process can read them"
            )
    return settings
