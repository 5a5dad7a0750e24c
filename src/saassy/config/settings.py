"""The settings of a deployment, from the environment (`SAASSY_*`).

The checks of each area live beside this module (redis, network, storage, observability,
runtime, executor, keys, rate_limits, billing); `environment` reads and refuses variables,
`catalog` loads `saassy.toml`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saassy.config import billing as billing_checks
from saassy.config import executor as executor_checks
from saassy.config import keys as key_checks
from saassy.config import network as network_checks
from saassy.config import observability as observability_checks
from saassy.config import rate_limits as rate_limit_checks
from saassy.config import redis as redis_checks
from saassy.config import runtime as runtime_checks
from saassy.config import storage as storage_checks
from saassy.config.catalog import (
    EXAMPLE_CONFIG,
    load_catalog,
    refuse_missing_logo,
    refuse_unreachable_destinations,
)
from saassy.config.choices import Environment, ExecutorKind, RuntimeChoice, StorageKind
from saassy.config.errors import ConfigError
from saassy.kit.secret_key import missing_secret_key_message
from saassy.kit.security import PasswordHasher, password_hasher
from saassy.plans.catalog import Catalog
from saassy.tasks.catalog import IMAGE_ONLY, PROCESS_ONLY, RuntimeKind
from saassy.vault.key_file import build_keyring
from saassy.vault.keys import KeyRing, VaultKeyError

ENV_PREFIX = "SAASSY_"
SQLITE_SUBMIT_TURNS = 2  # one in the database, one getting ready (kit/submit_turns.py)


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
    # Organizations a user may own besides their personal one (staff too): each is a tenant with
    # its own plan, quotas and free tier, so creating them must not be unbounded.
    organizations_per_user: int = Field(10, ge=0)
    # Seconds an API key that authenticated is remembered in each process (auth/access_cache.py):
    # its revocation reaches the other processes within this bound; 0 reads it at every request.
    api_key_cache_s: float = Field(2.0, ge=0, le=60)
    # Seconds a signed-in user's access (standing, organizations, roles, plans) read for an access
    # token is remembered in each process: a role change, removal or disabling reaches the other
    # processes within this bound; 0 reads it at every request.
    user_access_cache_s: float = Field(2.0, ge=0, le=60)

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
    # Task submissions in the app at once, per process (kit/submit_turns.py); 0: no limit.
    # Unset: 2 on SQLite, else none (on PostgreSQL submissions overlap their round trips).
    api_submit_turns: int | None = Field(None, ge=0)

    # The embedded task engine (local executor); `saassy dev` and `saassy api` run it.
    run_engine: bool = True
    executor_parallelism: int = Field(16, ge=1)
    # Beyond the parallelism: slots for an organization with nothing running, then for one
    # running less than its fair share, so a flood from one never makes another wait for a
    # sandbox to end.
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
    # Outgoing webhooks may reach private, loopback and link-local addresses (docs/webhooks.md):
    # for an operator whose customers' receivers live on the same private network, and tests.
    webhooks_allow_private: bool = False

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

    # Billing through Stripe (docs/billing.md). Without a secret key, plans are assigned by
    # staff and usage is still metered.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # A Stripe-compatible server instead of api.stripe.com (the tests' double, stripe-mock).
    stripe_api_base: str | None = None
    # A past-due subscription keeps its plan this long, then the default plan applies.
    billing_grace_days: int = Field(7, ge=0, le=90)
    # Usage goes to Stripe's meters once per window of this length (seconds, dividing an hour).
    billing_window_s: int = Field(3600, ge=60, le=3600)
    # Checkout and portal sessions an organization may open, and a user across organizations
    # (API and dashboard together): each is several calls to Stripe, whose rate limit every
    # organization here shares.
    billing_session_limit: str = "20/hour"
    # Webhook messages an organization may send by hand (redeliveries and test events, API
    # and dashboard together): each is a POST to a URL the tenant chose (docs/webhooks.md).
    webhook_send_limit: str = "60/hour"
    # Audit log entries older than this are deleted by the hourly prune (docs/audit.md).
    audit_retention_days: int = Field(365, ge=1, le=36500)
    # A data export's archive can be downloaded this long, then it is removed (docs/privacy.md).
    export_expiry_days: int = Field(7, ge=1, le=30)
    # Data exports a user may request in 24 hours (their account's and their organizations').
    export_limit_per_day: int = Field(3, ge=1, le=100)

    # The checks of each area live in its module; model validators run in this order.
    _rate_limit = field_validator(
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
        "billing_session_limit",
        "webhook_send_limit",
    )(rate_limit_checks.rate_limit)
    _redis_scheme = field_validator("redis_url")(redis_checks.redis_scheme)
    _redis_prefix = field_validator("redis_prefix")(redis_checks.redis_prefix)
    _redis_prefix_needs_redis = model_validator(mode="after")(redis_checks.redis_prefix_needs_redis)
    _proxy_addresses = field_validator("trusted_proxies")(network_checks.proxy_addresses)
    _cidr_ranges = field_validator("egress_allow_private")(network_checks.cidr_ranges)
    _pinned_hosts = field_validator("egress_hosts")(network_checks.pinned_hosts)
    _key_prefix = field_validator("s3_prefix")(storage_checks.key_prefix)
    _http_url = field_validator("s3_endpoint_url", "s3_public_endpoint_url")(
        storage_checks.http_url
    )
    _whole_s3_configuration = model_validator(mode="after")(storage_checks.whole_s3_configuration)
    _guessable_metrics_token = field_validator("metrics_token")(
        observability_checks.guessable_metrics_token
    )
    _sentry_dsn = field_validator("sentry_dsn")(observability_checks.sentry_dsn)
    _no_unisolated_production = model_validator(mode="after")(
        runtime_checks.no_unisolated_production
    )
    _broker_for_celery = model_validator(mode="after")(executor_checks.broker_for_celery)
    _runtime_options_apply = model_validator(mode="after")(runtime_checks.runtime_options_apply)
    _docker_url = field_validator("docker_url")(runtime_checks.docker_url)
    _stripe_secret_key = field_validator("stripe_secret_key")(billing_checks.stripe_secret_key)
    _stripe_webhook_secret = field_validator("stripe_webhook_secret")(
        billing_checks.stripe_webhook_secret
    )
    _stripe_api_base = field_validator("stripe_api_base")(billing_checks.api_base)
    _billing_window = field_validator("billing_window_s")(billing_checks.billing_window)
    _whole_stripe_configuration = model_validator(mode="after")(
        billing_checks.whole_stripe_configuration
    )
    _random_secret_key = field_validator("secret_key")(key_checks.random_secret_key)
    _refuse_default_secrets = model_validator(mode="after")(key_checks.refuse_default_secrets)

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
    def submit_turns(self) -> int:
        """`api_submit_turns` as set, else its default for the database; 0: no limit."""
        if self.api_submit_turns is not None:
            return self.api_submit_turns
        return SQLITE_SUBMIT_TURNS if self.resolved_database_url.startswith("sqlite") else 0

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
