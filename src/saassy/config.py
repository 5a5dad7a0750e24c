"""Settings from the environment (`SAASSY_*`) and the operator's catalog from `saassy.toml`."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from saassy.egress.addresses import AddressGuard, parse_private_ranges
from saassy.egress.policy import never_reachable
from saassy.egress.resolver import parse_pinned_hosts
from saassy.kit.catalog_model import catalog_error_lines
from saassy.kit.secret_key import SecretKeyError, check_secret_key, missing_secret_key_message
from saassy.kit.security import PasswordHasher, password_hasher
from saassy.plans.catalog import LOGO_TYPES, Catalog
from saassy.tasks.catalog import IMAGE_ONLY, PROCESS_ONLY, RuntimeKind, runtime_context
from saassy.vault.key_file import build_keyring, missing_keys_message
from saassy.vault.keys import KeyRing, VaultKeyError, parse_ring

EXAMPLE_CONFIG = Path(__file__).parent / "examples" / "saassy.toml"
ENV_PREFIX = "SAASSY_"
# `SAASSY_*` names other parts of the product read, which are not settings of a server: the
# CLI's API client, the test suite and the benchmarks, and the sandbox contract (a task that
# runs saassy itself sees those). Every other SAASSY_* name must be a Settings field.
READ_ELSEWHERE = frozenset(
    {
        "SAASSY_API_URL",
        "SAASSY_API_KEY",
        "SAASSY_INPUT",
        "SAASSY_OUTPUT",
        "SAASSY_EVENTS",
        "SAASSY_SANDBOX",
        "SAASSY_SECRETS",
    }
)
READ_ELSEWHERE_PREFIXES = ("SAASSY_TEST_", "SAASSY_BENCH_")
# What both Redis clients (rate limits, events) accept alike.
REDIS_URL_SCHEMES = re.compile(r"rediss?://", re.IGNORECASE)
# No glob characters: they would widen the event listener's pattern subscription.
REDIS_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_METRICS_TOKEN = 24
DOCKER_URL_SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://")


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


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
BROKER_SETTINGS = ("broker_url", "broker_queue", "broker_visibility_timeout_s")


class RuntimeChoice(StrEnum):
    """Which runtime runs sandboxes: `process` runs task types' commands, `docker` their images."""

    process = "process"
    docker = "docker"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and where it came from."""


class Settings(BaseSettings):
    """Everything that differs between deployments; secrets and URLs only come from here."""

    # Unknown SAASSY_* variables are refused by `load_settings`, which knows the exceptions.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

    env: Environment = Environment.development
    data_dir: Path = Path(".saassy")
    config: Path | None = None
    database_url: str | None = None
    # PostgreSQL connections per process (plus half as many overflow); SQLite always uses one.
    database_pool_size: int = Field(24, ge=1)
    # Shared rate-limit counters and the live event bus across processes; in memory without it.
    redis_url: SecretStr | None = None
    # Starts every event channel and names the rate-limit keys, so installations can share a Redis.
    redis_prefix: str = "saassy"
    # Required by every command that signs or verifies tokens; `saassy dev` makes its own.
    secret_key: SecretStr | None = None
    # The vault's key ring, newest first; in development it defaults to <data_dir>/vault.key.
    vault_keys: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"

    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    magic_link_ttl: timedelta = timedelta(minutes=15)
    password_reset_ttl: timedelta = timedelta(hours=1)
    email_verification_ttl: timedelta = timedelta(days=3)
    invitation_ttl: timedelta = timedelta(days=7)

    # OWASP's Argon2id floor is 19 MiB, 2 passes, 1 lane; raising any of these rehashes on login.
    password_memory_kib: int = Field(19456, ge=19456)
    password_time_cost: int = Field(2, ge=2)
    password_parallelism: int = Field(1, ge=1)

    smtp_url: SecretStr | None = None
    email_from: str = "Saassy <no-reply@localhost>"

    login_limit_per_account_ip: str = "5/15 minutes"
    login_limit_per_account: str = "50/hour"
    login_limit_per_ip: str = "30/minute"
    # A device that signed in to the account before (device cookie) meets only this limit.
    login_limit_per_device: str = "5/15 minutes"
    magic_link_limit_per_email: str = "5/hour"
    # Invitation e-mails (invites and resends, API and dashboard): per invited address, across
    # every organization, and per organization.
    invitation_limit_per_email: str = "3/hour"
    invitation_limit_per_email_daily: str = "10/day"
    invitation_limit_per_organization: str = "50/day"
    anonymous_limit_per_ip: str = "120/minute"
    # Dashboard requests per signed-in user (pages, live updates); the plan's API rate limit
    # governs the API, not a person clicking through the dashboard.
    dashboard_limit_per_user: str = "600/minute"
    max_body_bytes: int = 2 * 1024 * 1024

    # The embedded task engine (local executor); `saassy dev` and `saassy api` run it.
    run_engine: bool = True
    executor_parallelism: int = Field(16, ge=1)
    # Beyond the parallelism: slots only an organization with nothing running may take, so a
    # flood from one never makes another wait for a sandbox to end.
    executor_reserved_slots: int = Field(1, ge=0)
    task_lease_s: float = Field(15, ge=2)

    dispatch_poll_s: float = Field(0.5, gt=0)
    # Where attempts run (docs/scale-out.md). With `celery`, the broker only wakes workers:
    # the database stays the source of truth; `saassy api` then runs no engine.
    executor: ExecutorKind = ExecutorKind.local
    broker_url: SecretStr | None = None
    broker_queue: str = Field("saassy", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    # How long the broker lets a delivered message go unacknowledged before it hands it out
    # again: Redis's visibility timeout (applied by Saassy; by default twice the hard time
    # limit), RabbitMQ's consumer_timeout (set in rabbitmq.conf; its default is 1800 s).
    broker_visibility_timeout_s: int | None = Field(None, ge=1)
    # Attempts lost to the platform (a crash, a lease that ran out) re-run this many times per
    # task on top of its type's `retries`: accepted work is done at least once.
    platform_loss_retries: int = Field(2, ge=0, le=100)
    # What runs sandboxes: `process` (bubblewrap, task types' `command`) or `docker` (a
    # container of each task type's `image`, through dockerd at `docker_url`).
    runtime: RuntimeChoice = RuntimeChoice.process
    docker_url: str = "unix:///var/run/docker.sock"
    # Run tasks without a sandbox where none can be made (no user namespaces): development only.
    allow_unisolated: bool = False
    # Proxies whose X-Forwarded-For/-Proto are believed (addresses or CIDR ranges); by default
    # none, so no client can pick the address its rate limits are counted under.
    trusted_proxies: list[str] = Field(default_factory=list)
    # The egress proxy: private ranges sandboxes may reach after all (JSON list of CIDRs), and
    # names pinned to addresses without DNS (JSON object), which count as opened too.
    egress_allow_private: list[str] = Field(default_factory=list)
    egress_hosts: dict[str, str] = Field(default_factory=dict)

    # Artifacts: under <data_dir>/artifacts, or in an S3-compatible bucket (docs/storage.md).
    storage: StorageKind = StorageKind.local
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_region: str | None = None
    # Without these, boto3's own chain: AWS_* variables, ~/.aws, an instance or pod role.
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # SigV4 presigned URLs live at most 7 days.
    s3_presign_expiry_s: int = Field(300, ge=1, le=7 * 24 * 3600)
    # Prometheus scrapes `/metrics` with `Authorization: Bearer <token>`. Without one the
    # endpoint is open in development and test, and not served at all in production.
    metrics_token: SecretStr | None = None
    # Unexpected errors go to Sentry (or a compatible service) when set, secrets scrubbed.
    sentry_dsn: SecretStr | None = None

    @field_validator(
        "login_limit_per_account_ip",
        "login_limit_per_account",
        "login_limit_per_ip",
        "login_limit_per_device",
        "magic_link_limit_per_email",
        "invitation_limit_per_email",
        "invitation_limit_per_email_daily",
        "invitation_limit_per_organization",
        "anonymous_limit_per_ip",
        "dashboard_limit_per_user",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        # Parsed here so a typo stops start-up instead of failing every request it governs.
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. '5/15 minutes' or '120/minute'"
            ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not REDIS_URL_SCHEMES.match(value.get_secret_value()):
            raise ValueError("not a Redis URL: write redis://host:6379/0 or rediss://...")
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        if not REDIS_PREFIX.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Redis prefix: 1 to 64 letters, digits, '_', '-' or '.'"
            )
        return value

    @model_validator(mode="after")
    def _redis_prefix_needs_redis(self) -> Settings:
        if "redis_prefix" in self.model_fields_set and self.redis_url is None:
            raise ValueError(
                "SAASSY_REDIS_PREFIX is set but SAASSY_REDIS_URL is not: nothing would use it"
            )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in value]
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR range: {exc}") from None

    @field_validator("egress_allow_private")
    @classmethod
    def _cidr_ranges(cls, value: list[str]) -> list[str]:
        return [str(network) for network in parse_private_ranges(value)]

    @field_validator("egress_hosts")
    @classmethod
    def _pinned_hosts(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: str(address) for name, address in parse_pinned_hosts(value).items()}

    @field_validator("s3_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        """Stored as `dir/` (or empty), so keys under it are `dir/<org>/...`."""
        stripped = value.strip("/")
        if stripped and any(part in ("", ".", "..") for part in stripped.split("/")):
            raise ValueError(f"{value!r} is not a key prefix: write e.g. 'saassy/artifacts'")
        return f"{stripped}/" if stripped else ""

    @field_validator("s3_endpoint_url", "s3_public_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/@\s]+/?", value):
            raise ValueError(
                "write the server's address alone, e.g. 'http://minio:9000' (the bucket goes "
                "in SAASSY_S3_BUCKET, credentials in SAASSY_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY)"
            )
        return value.rstrip("/") if value is not None else None

    @model_validator(mode="after")
    def _whole_s3_configuration(self) -> Settings:
        if self.storage is StorageKind.s3:
            if not self.s3_bucket:
                raise ValueError(
                    "SAASSY_STORAGE=s3 needs SAASSY_S3_BUCKET, the bucket artifacts are kept in"
                )
            if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
                raise ValueError(
                    "set both SAASSY_S3_ACCESS_KEY_ID and SAASSY_S3_SECRET_ACCESS_KEY, or "
                    "neither (boto3 then finds credentials in AWS_* variables or a role)"
                )
            return self
        ignored = sorted(
            f"SAASSY_{name.upper()}"
            for name in self.model_fields_set
            if name.startswith("s3_") and getattr(self, name) not in (None, "")
        )
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} set but SAASSY_STORAGE is local: set SAASSY_STORAGE=s3 "
                "to store artifacts in S3, or unset them"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _guessable_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_METRICS_TOKEN:
            raise ValueError(
                f"shorter than {MIN_METRICS_TOKEN} characters: make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from sentry_sdk.utils import BadDsn, Dsn  # only where error tracking is wanted

            try:
                Dsn(value.get_secret_value())
            except BadDsn:
                raise ValueError("not a Sentry DSN (https://<key>@<host>/<project>)") from None
        return value

    @model_validator(mode="after")
    def _no_unisolated_production(self) -> Settings:
        if self.allow_unisolated and self.env is Environment.production:
            raise ValueError(
                "SAASSY_ALLOW_UNISOLATED=true is refused in production: tasks would run without "
                "a sandbox; install bubblewrap or enable unprivileged user namespaces instead"
            )
        return self

    @model_validator(mode="after")
    def _broker_for_celery(self) -> Settings:
        if self.executor is not ExecutorKind.celery:
            given = [name for name in BROKER_SETTINGS if name in self.model_fields_set]
            if given:
                names = ", ".join(f"SAASSY_{name.upper()}" for name in given)
                raise ValueError(f"{names} only apply with SAASSY_EXECUTOR=celery")
            return self
        if self.broker_url is None:
            raise ValueError(
                "SAASSY_EXECUTOR=celery needs SAASSY_BROKER_URL (redis://... or amqp://...)"
            )
        scheme = urlsplit(self.broker_url.get_secret_value()).scheme.lower()
        if scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"SAASSY_BROKER_URL: {scheme or 'no'} scheme is not a broker Saassy supports: "
                "use redis://, rediss://, amqp:// or amqps://"
            )
        if self.env is Environment.production:
            # Workers on other hosts share neither this process's memory nor its data dir.
            if self.redis_url is None:
                raise ValueError(
                    "SAASSY_EXECUTOR=celery needs SAASSY_REDIS_URL in production: live logs and "
                    "statuses reach the API processes over Redis"
                )
            if self.storage is StorageKind.local:
                raise ValueError(
                    "SAASSY_EXECUTOR=celery needs SAASSY_STORAGE=s3 in production: artifacts "
                    "written by workers must be where every API process can read them"
                )
        return self

    @model_validator(mode="after")
    def _runtime_options_apply(self) -> Settings:
        docker = self.runtime is RuntimeChoice.docker
        if docker and self.allow_unisolated:
            raise ValueError(
                "SAASSY_ALLOW_UNISOLATED applies to the process runtime only; "
                "SAASSY_RUNTIME=docker always runs containers"
            )
        if not docker and "docker_url" in self.model_fields_set:
            raise ValueError("SAASSY_DOCKER_URL is set but SAASSY_RUNTIME is not docker")
        return self

    @field_validator("docker_url")
    @classmethod
    def _docker_url(cls, value: str) -> str:
        if not value.startswith(DOCKER_URL_SCHEMES):
            schemes = ", ".join(DOCKER_URL_SCHEMES)
            raise ValueError(f"not a docker daemon address: it starts with {schemes}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _random_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                check_secret_key(value.get_secret_value())
            except SecretKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env is not Environment.development:
            if self.database_url is None:
                raise ValueError("SAASSY_DATABASE_URL must be set outside development")
            if self.vault_keys is None:
                raise ValueError(missing_keys_message())
        if self.vault_keys is not None:
            try:
                parse_ring(self.vault_keys.get_secret_value())
            except VaultKeyError as exc:
                raise ValueError(f"SAASSY_VAULT_KEYS: {exc}") from None
        return self

    @property
    def signing_secret(self) -> str:
        """The secret key; a command that signs or verifies tokens stops here without one."""
        if self.secret_key is None:
            raise ConfigError(missing_secret_key_message())
        return self.secret_key.get_secret_value()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'saassy.db'}"

    @property
    def config_path(self) -> Path:
        """`--config`/`SAASSY_CONFIG`, else `./saassy.toml`, else the built-in example."""
        if self.config is not None:
            return self.config
        local = Path("saassy.toml")
        return local if local.is_file() else EXAMPLE_CONFIG

    @property
    def password_hasher(self) -> PasswordHasher:
        return password_hasher(
            self.password_memory_kib, self.password_time_cost, self.password_parallelism
        )

    @property
    def runtimes(self) -> frozenset[RuntimeKind]:
        """What the configured runtime can start: commands (process) or images (docker)."""
        return IMAGE_ONLY if self.runtime is RuntimeChoice.docker else PROCESS_ONLY

    @cached_property
    def catalog(self) -> Catalog:
        catalog = load_catalog(self.config_path, self.runtimes)
        refuse_unreachable_destinations(catalog, self.config_path, self.egress_allow_private)
        refuse_missing_logo(catalog, self.config_path)
        return catalog

    @cached_property
    def vault_keyring(self) -> KeyRing:
        """The vault's keys, built once per process (development may make its key file)."""
        keys = self.vault_keys.get_secret_value() if self.vault_keys is not None else None
        try:
            return build_keyring(
                keys,
                development=self.env is Environment.development,
                data_dir=self.data_dir,
            )
        except VaultKeyError as exc:
            raise ConfigError(str(exc)) from None


def redis_url(settings: Settings) -> str | None:
    """The Redis URL in clear, for the clients that connect with it (never for a log line)."""
    return settings.redis_url.get_secret_value() if settings.redis_url is not None else None


def refuse_missing_logo(catalog: Catalog, path: Path) -> None:
    logo = catalog.branding.logo_path(path.parent)
    if logo is None:
        return
    if logo.suffix.lower() not in LOGO_TYPES:
        kinds = ", ".join(sorted(LOGO_TYPES))
        raise ConfigError(f"{path}: branding.logo: {logo.name!r} is not one of {kinds}")
    if not logo.is_file():
        raise ConfigError(f"{path}: branding.logo: no file at {logo}")


def refuse_unreachable_destinations(catalog: Catalog, path: Path, allow_private: list[str]) -> None:
    """An allow-list entry the proxy would refuse on every connection is a promise nothing
    keeps: stop start-up naming it (the ranges the operator opened are taken into account)."""
    guard = AddressGuard(parse_private_ranges(allow_private))
    for name, task_type in catalog.task_types.items():
        for index, entry in enumerate(task_type.network_allow):
            if (why := never_reachable(entry, guard)) is not None:
                key = f"task_types.{name}.network_allow.{index}"
                raise ConfigError(f"{path}: {key}: {entry!r} can never be reached: {why}")


def setting_variables() -> frozenset[str]:
    """The environment variable of every Settings field, e.g. `SAASSY_DATABASE_URL`."""
    return frozenset(f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`SAASSY_*` names in `environ` that neither configure Settings nor are read elsewhere."""
    known = setting_variables() | READ_ELSEWHERE
    return sorted(
        name
        for name in environ
        # pydantic-settings matches names case-insensitively, so the check does too.
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(READ_ELSEWHERE_PREFIXES)
    )


def refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    """A mistyped variable would silently leave its setting at the default: stop instead."""
    unknown = unknown_variables(environ)
    if not unknown:
        return
    known = sorted(setting_variables())
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        described.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise ConfigError(
        f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(described)}; "
        "the README's Configuration section lists every SAASSY_* variable"
    )


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into a ConfigError naming the variable.

    An unknown `SAASSY_*` variable in the environment is refused first.
    """
    refuse_unknown_variables(os.environ)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            if err["loc"]
            else err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    except SettingsError as exc:  # a list or object variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"SAASSY_{field[1].upper()}" if field else "a SAASSY_* variable"
        raise ConfigError(f"invalid settings: {name}: not valid JSON") from exc


def load_catalog(path: Path, runtimes: frozenset[RuntimeKind] = PROCESS_ONLY) -> Catalog:
    """Read and validate `saassy.toml`; an error names the file and the dotted key at fault.

    `runtimes` says what can run: a task type no configured runtime can start is refused.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Catalog.model_validate(raw, context=runtime_context(runtimes))
    except ValidationError as exc:
        first, *others = catalog_error_lines(exc)
        more = f" (and {len(others)} more)" if others else ""
        raise ConfigError(f"{path}: {first}{more}") from exc
