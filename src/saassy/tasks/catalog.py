"""Task types as the operator declares them in `saassy.toml` (`[task_types.<name>]`).

Validated when the catalog loads: a bad input schema, an impossible timeout or a program no
configured runtime can start stops start-up with the dotted key at fault, not the first
customer's request. `ResourceProfile` lives here because a task type asks for resources and a
plan caps them (plans import it from here).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from saassy.egress.policy import normalise_allow_entry
from saassy.kit.catalog_model import CatalogModel
from saassy.runtime.artifacts import MAX_DEPTH_CEILING, MAX_ENTRIES_CEILING, OutputLimits

ActionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
TaskTypeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
# Also a valid environment variable name: a task may receive its secrets as variables.
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"  # noqa: S105 - a name pattern
SecretName = Annotated[str, Field(pattern=SECRET_NAME_PATTERN)]
# `api.example.com`, `host:8443`, `*.example.com`, IP literals; stored in canonical form.
AllowEntry = Annotated[str, AfterValidator(normalise_allow_entry)]
WORKERS_PLACEHOLDER = "{workers}"
# Each distinct custom unit name is a ledger row per attempt and a line in `/usage`.
DEFAULT_MAX_UNIT_NAMES = 50


class RuntimeKind(StrEnum):
    """What a configured runtime starts: `process` runs a `command`, `image` runs an `image`."""

    process = "process"
    image = "image"


PROCESS_ONLY: frozenset[RuntimeKind] = frozenset({RuntimeKind.process})
IMAGE_ONLY: frozenset[RuntimeKind] = frozenset({RuntimeKind.image})  # the docker runtime


def runtime_context(runtimes: Collection[RuntimeKind]) -> dict[str, Any]:
    """The validation context that tells task types which runtimes are configured."""
    return {"runtimes": frozenset(runtimes)}


def _configured(info: ValidationInfo) -> frozenset[RuntimeKind]:
    context = info.context if isinstance(info.context, dict) else {}
    runtimes: frozenset[RuntimeKind] = context.get("runtimes", PROCESS_ONLY)
    return runtimes


class ResourceProfile(CatalogModel):
    memory_mb: int = Field(512, ge=16)
    cpus: float = Field(0.5, gt=0)
    pids: int = Field(256, ge=8)
    disk_mb: int = Field(1024, ge=1)

    def exceeding(self, allowed: ResourceProfile) -> list[str]:
        """The fields where this profile asks for more than `allowed`."""
        return [
            name
            for name in ("memory_mb", "cpus", "pids", "disk_mb")
            if getattr(self, name) > getattr(allowed, name)
        ]


class OutputProfile(CatalogModel):
    """What one attempt may leave in its output dir; past any of them it keeps nothing."""

    max_files: int = Field(
        1000, ge=1, le=MAX_ENTRIES_CEILING, description="Files and dirs, result.json included."
    )
    max_depth: int = Field(16, ge=0, le=MAX_DEPTH_CEILING, description="Nested dir levels.")
    max_mb: int = Field(1024, ge=1, description="Total size of its files.")

    @property
    def limits(self) -> OutputLimits:
        return OutputLimits(self.max_files, self.max_depth, self.max_mb * 2**20)


class TaskType(CatalogModel):
    """What customers may run: a program, its input schema, its limits and permissions."""

    name: TaskTypeName = Field("", description="The key under [task_types]; set by the catalog.")
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    command: tuple[str, ...] | None = Field(
        None, description="argv for the process runtime; '{workers}' is the example programs' dir."
    )
    image: str | None = Field(None, min_length=1, description="Image for docker/kubernetes.")
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    default_timeout_s: int = Field(60, ge=1)
    max_timeout_s: int = Field(3600, ge=1)
    retries: int = Field(0, ge=0, le=100)
    retry_backoff_s: float = Field(5.0, ge=0)
    retry_backoff_max_s: float = Field(300.0, ge=0)
    # What it writes is held in memory: a default disk_mb below the default memory_mb.
    resources: ResourceProfile = ResourceProfile(disk_mb=256)
    outputs: OutputProfile = OutputProfile()
    network: bool = False
    network_allow: tuple[AllowEntry, ...] = Field(
        (), description="Destinations reachable when network is on; none: any public address."
    )
    secrets: tuple[SecretName, ...] = ()
    secrets_as_env: bool = Field(False, description="Also give each secret as an env variable.")
    actions: tuple[ActionName, ...] = ()
    max_unit_names: int = Field(
        DEFAULT_MAX_UNIT_NAMES,
        ge=1,
        le=10_000,
        description="Distinct custom unit names one attempt may report; past it: invalid_output.",
    )
    requires_plan: tuple[str, ...] = Field(
        (), description="Plans whose organizations may run it; empty: every plan."
    )
    allow_user_namespaces: bool = Field(
        False,
        description="Let the program make user namespaces inside its sandbox (a browser's own "
        "sandbox needs them); off, the seccomp filter refuses them.",
    )

    _validator: Validator = PrivateAttr()

    @field_validator("resources", mode="before")
    @classmethod
    def _disk_within_memory(cls, value: Any) -> Any:
        """An unset disk_mb is half of memory_mb: what a task writes is held in its memory."""
        if isinstance(value, dict) and "disk_mb" not in value:
            memory = value.get("memory_mb", ResourceProfile.model_fields["memory_mb"].default)
            if isinstance(memory, int):
                return {**value, "disk_mb": max(1, memory // 2)}
        return value

    @field_validator("command")
    @classmethod
    def _argv_not_empty(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("command must be a non-empty argv list, e.g. ['python3', 'main.py']")
        if value is not None and RuntimeKind.process not in _configured(info):
            raise PydanticCustomError(
                "no_runtime",
                "no process runtime is configured (SAASSY_RUNTIME=docker runs images only): "
                "declare an image instead",
            )
        return value

    @field_validator("image")
    @classmethod
    def _image_runtime_configured(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Accepting it would list the type, reserve quota and then fail every attempt.
        if value is not None and RuntimeKind.image not in _configured(info):
            raise PydanticCustomError(
                "no_runtime",
                "no image runtime is configured (SAASSY_RUNTIME=process runs commands only): "
                "set SAASSY_RUNTIME=docker, or declare a `command` (the argv it runs) instead",
            )
        return value

    @field_validator("input_schema")
    @classmethod
    def _valid_json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            validator_for(value, default=Draft202012Validator).check_schema(value)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path)
            raise ValueError(
                f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
            ) from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TaskType:
        if self.command is None and self.image is None:
            raise ValueError(
                "a task type needs a command (the argv the process runtime runs) or an image "
                "(for the docker runtime)"
            )
        if self.default_timeout_s > self.max_timeout_s:
            raise ValueError("default_timeout_s is larger than max_timeout_s")
        if self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError("retry_backoff_max_s is smaller than retry_backoff_s")
        if self.network_allow and not self.network:
            raise ValueError("network_allow needs network = true")
        if len(set(self.secrets)) != len(self.secrets):
            raise ValueError("secrets lists a name twice")
        if self.secrets_as_env and not self.secrets:
            raise ValueError("secrets_as_env needs secrets to give")
        if self.secrets_as_env and (taken := [n for n in self.secrets if _reserved_variable(n)]):
            raise ValueError(
                f"secrets_as_env: {taken[0]} is a variable the sandbox or its programs rely "
                "on; rename the secret (as a file under $SAASSY_SECRETS any name is fine)"
            )
        if self.secrets_as_env and (taken := [n for n in self.secrets if _shell_variable(n)]):
            raise ValueError(
                f"secrets_as_env: {taken[0]} is a variable /bin/sh sets or refuses itself, and "
                "the docker runtime's gate hands secrets over through one; rename the secret "
                "(as a file under $SAASSY_SECRETS any name is fine)"
            )
        if len(set(self.network_allow)) != len(self.network_allow):
            raise ValueError("network_allow lists a destination twice")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("actions lists a name twice")
        if self.resources.disk_mb >= self.resources.memory_mb:
            raise ValueError(
                "resources: disk_mb must be below memory_mb: what a task writes is held in memory "
                "and counts against memory_mb, so a disk_mb at or above it would end in an "
                "out-of-memory kill instead of a full disk (docs/runtime.md, Limits)"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        cls = validator_for(self.input_schema, default=Draft202012Validator)
        self._validator = cls(self.input_schema)

    @property
    def input_validator(self) -> Validator:
        return self._validator

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def backoff_s(self, failed_attempts: int) -> float:
        """Wait before the next attempt after `failed_attempts` (1, 2, ...): doubling, capped."""
        exponent = max(0, failed_attempts - 1)
        return min(self.retry_backoff_max_s, self.retry_backoff_s * 2.0 ** min(exponent, 32))

    @property
    def uses_workers_dir(self) -> bool:
        return any(WORKERS_PLACEHOLDER in arg for arg in self.command or ())

    def argv(self, workers_dir: Path) -> tuple[str, ...]:
        """The command with `{workers}` replaced by `workers_dir`."""
        if self.command is None:
            raise ValueError(f"task type {self.name!r} has no command (image only)")
        return tuple(arg.replace(WORKERS_PLACEHOLDER, str(workers_dir)) for arg in self.command)


RESERVED_VARIABLES = frozenset(
    {"PATH", "HOME", "TMPDIR", "LANG", "SHELL", "USER", "NO_PROXY", "no_proxy"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}
)
RESERVED_PREFIXES = ("SAASSY_", "LD_", "LC_", "PYTHON")


# What dash, bash and busybox's sh change or refuse when assigned (`export NAME='value'`), so
# that a program behind the docker runtime's gate (runtime/gate.py) would not see the value:
# dash stops at a non-numeric OPTIND, bash at its read-only ones (UID ...) and rewrites the rest.
SHELL_VARIABLES = frozenset(
    {"OPTIND", "LINENO", "PPID", "UID", "EUID", "GROUPS", "SHELLOPTS", "BASHOPTS", "BASHPID"}
    | {"HISTCMD", "RANDOM", "SRANDOM", "SECONDS", "EPOCHSECONDS", "EPOCHREALTIME", "DIRSTACK"}
    | {"FUNCNAME", "SHLVL"}
)
SHELL_PREFIXES = ("BASH_",)


def _shell_variable(name: str) -> bool:
    return name in SHELL_VARIABLES or name.startswith(SHELL_PREFIXES)


def _reserved_variable(name: str) -> bool:
    """Environment names a secret must not replace: the loader's, the proxy's, the contract's."""
    return name in RESERVED_VARIABLES or name.upper().startswith(RESERVED_PREFIXES)


def name_task_types_by_key(task_types: Any) -> Any:
    """`[task_types.echo]` gets `name = "echo"`, as plans get their key."""
    if not isinstance(task_types, dict):
        return task_types
    return {
        key: {**value, "name": key} if isinstance(value, dict) else value
        for key, value in task_types.items()
    }
