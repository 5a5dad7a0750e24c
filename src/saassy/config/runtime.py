"""Checks of the runtime settings: what runs sandboxes (`SAASSY_RUNTIME`, `SAASSY_DOCKER_URL`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saassy.config.choices import Environment, RuntimeChoice

if TYPE_CHECKING:
    from saassy.config.settings import Settings

DOCKER_URL_SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://")


def no_unisolated_production(settings: Settings) -> Settings:
    if settings.allow_unisolated and settings.env is Environment.production:
        raise ValueError(
            "SAASSY_ALLOW_UNISOLATED=true is refused in production: tasks would run without "
            "a sandbox; install bubblewrap or enable unprivileged user namespaces instead"
        )
    return settings


def runtime_options_apply(settings: Settings) -> Settings:
    docker = settings.runtime is RuntimeChoice.docker
    if docker and settings.allow_unisolated:
        raise ValueError(
            "SAASSY_ALLOW_UNISOLATED applies to the process runtime only; "
            "SAASSY_RUNTIME=docker always runs containers"
        )
    if not docker and "docker_url" in settings.model_fields_set:
        raise ValueError("SAASSY_DOCKER_URL is set but SAASSY_RUNTIME is not docker")
    return settings


def docker_url(value: str) -> str:
    if not value.startswith(DOCKER_URL_SCHEMES):
        schemes = ", ".join(DOCKER_URL_SCHEMES)
        raise ValueError(f"not a docker daemon address: it starts with {schemes}")
    return value
