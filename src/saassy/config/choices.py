"""The values a setting picks among: where the product runs, what runs and stores its work."""

from enum import StrEnum


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class StorageKind(StrEnum):
    local = "local"
    s3 = "s3"


class ExecutorKind(StrEnum):
    local = "local"  # attempts run in the server process (`saassy dev`, `saassy api`)
    celery = "celery"  # in `saassy worker` processes; `saassy scheduler` dispatches


class RuntimeChoice(StrEnum):
    """Which runtime runs sandboxes: `process` runs task types' commands, `docker` their images."""

    process = "process"
    docker = "docker"
