"""Settings from the environment (`SAASSY_*`) and the operator's catalog from `saassy.toml`.

`Settings` is in `settings`, each area's checks in a module of its own; importers use the
names below.
"""

from saassy.config.catalog import (
    EXAMPLE_CONFIG,
    load_catalog,
    refuse_missing_logo,
    refuse_unreachable_destinations,
)
from saassy.config.choices import Environment, ExecutorKind, RuntimeChoice, StorageKind
from saassy.config.environment import (
    READ_ELSEWHERE,
    READ_ELSEWHERE_PREFIXES,
    load_settings,
    refuse_unknown_variables,
    setting_variables,
    unknown_variables,
)
from saassy.config.errors import ConfigError
from saassy.config.redis import redis_url
from saassy.config.settings import ENV_PREFIX, Settings

__all__ = [
    "ENV_PREFIX",
    "EXAMPLE_CONFIG",
    "READ_ELSEWHERE",
    "READ_ELSEWHERE_PREFIXES",
    "ConfigError",
    "Environment",
    "ExecutorKind",
    "RuntimeChoice",
    "Settings",
    "StorageKind",
    "load_catalog",
    "load_settings",
    "redis_url",
    "refuse_missing_logo",
    "refuse_unknown_variables",
    "refuse_unreachable_destinations",
    "setting_variables",
    "unknown_variables",
]
