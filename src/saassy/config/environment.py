"""Reading settings from the environment: every `SAASSY_*` variable is a setting or refused."""

import difflib
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from saassy.config.errors import ConfigError
from saassy.config.settings import ENV_PREFIX, Settings

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
