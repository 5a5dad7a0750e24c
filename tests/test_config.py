"""Settings from `SAASSY_*` variables and the catalog from `saassy.toml`."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

import pytest

from saassy.config import (
    EXAMPLE_CONFIG,
    READ_ELSEWHERE,
    ConfigError,
    Environment,
    load_catalog,
    load_settings,
    setting_variables,
    unknown_variables,
)
from tests.conftest import TEST_VAULT_KEY

STRONG_SECRET = secrets.token_urlsafe(48)


pytestmark = pytest.mark.usefixtures("clean_environment")


def test_variables_with_the_saassy_prefix_configure_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAASSY_BASE_URL", "https://tasks.example.com")
    monkeypatch.setenv("SAASSY_DATABASE_URL", "postgresql://app@db:5432/saassy")
    monkeypatch.setenv("SAASSY_ACCESS_TOKEN_TTL", "PT5M")
    monkeypatch.setenv("DATABASE_URL", "postgresql://not-ours@elsewhere/db")

    settings = load_settings()

    assert settings.base_url == "https://tasks.example.com"
    assert settings.database_url == "postgresql://app@db:5432/saassy"
    assert settings.access_token_ttl.total_seconds() == 300


def test_development_defaults_to_an_embedded_database_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.env is Environment.development
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'saassy.db'}"


@pytest.mark.parametrize("env", ["development", "test", "production"])
@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("too-short-a-secret", "holds 13 bytes, at least 32"),  # read as base64
        (secrets.token_urlsafe(24), "holds 24 bytes, at least 32"),  # 32 characters
        (secrets.token_hex(16), "holds 16 bytes, at least 32"),  # 32 characters
        ("x" * 64, "repeats a few characters"),
        ("ab" * 32, "repeats a few characters"),  # hex: 32 bytes of 0xab
        (" dev-insecure-secret-change-me-0123456789 ", "published in Saassy's source"),
    ],
)
def test_a_weak_or_published_secret_is_refused_in_every_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, secret: str, why: str
) -> None:
    monkeypatch.setenv("SAASSY_ENV", env)
    monkeypatch.setenv("SAASSY_DATABASE_URL", "postgresql://app@db/saassy")
    monkeypatch.setenv("SAASSY_VAULT_KEYS", TEST_VAULT_KEY)
    monkeypatch.setenv("SAASSY_SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="SAASSY_SECRET_KEY: ") as caught:
        load_settings()
    message = str(caught.value)
    assert why in message
    assert "secrets.token_urlsafe(48)" in message
    assert secret.strip() not in message


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_urlsafe(32),  # 43 characters, 32 bytes
        secrets.token_hex(32),
        base64.b64encode(secrets.token_bytes(32)).decode(),  # `openssl rand -base64 32`
        "correct horse battery staple, and then some more words",
    ],
)
def test_random_secrets_of_32_bytes_count(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("SAASSY_SECRET_KEY", secret)
    assert load_settings().signing_secret == secret


@pytest.mark.parametrize("env", ["development", "test", "production"])
def test_without_a_secret_nothing_signs(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("SAASSY_ENV", env)
    monkeypatch.setenv("SAASSY_DATABASE_URL", "postgresql://app@db/saassy")
    monkeypatch.setenv("SAASSY_VAULT_KEYS", TEST_VAULT_KEY)
    settings = load_settings()  # a command that signs nothing (`saassy db upgrade`) may run
    with pytest.raises(ConfigError, match=r"^SAASSY_SECRET_KEY must be set"):
        settings.signing_secret  # noqa: B018


def test_production_needs_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_ENV", "production")
    monkeypatch.setenv("SAASSY_SECRET_KEY", STRONG_SECRET)
    with pytest.raises(ConfigError, match="SAASSY_DATABASE_URL must be set"):
        load_settings()
    monkeypatch.setenv("SAASSY_DATABASE_URL", "postgresql://app@db/saassy")
    monkeypatch.setenv("SAASSY_VAULT_KEYS", TEST_VAULT_KEY)
    assert load_settings().env is Environment.production


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_ENV", "staging")
    monkeypatch.setenv("SAASSY_PASSWORD_MEMORY_KIB", "1024")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SAASSY_ENV" in str(caught.value)
    assert "SAASSY_PASSWORD_MEMORY_KIB" in str(caught.value)


@pytest.mark.parametrize(
    "variable", ["SAASSY_LOGIN_LIMIT_PER_DEVICE", "SAASSY_ANONYMOUS_LIMIT_PER_IP"]
)
def test_a_rate_limit_that_does_not_parse_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "5 per fortnight")
    with pytest.raises(ConfigError, match=f"{variable}: '5 per fortnight' is not a rate limit"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAASSY_WEBHOOK_SEND_LIMIT", "0/hour"),
        ("SAASSY_LOGIN_LIMIT_PER_IP", "0/minute"),
        ("SAASSY_INVITATION_LIMIT_PER_EMAIL", "3/hour;0/day"),
    ],
)
def test_a_rate_limit_of_zero_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}: '{value}' allows nothing") as caught:
        load_settings()
    assert len(str(caught.value).splitlines()) == 1


def test_egress_settings_are_read_as_json_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_EGRESS_ALLOW_PRIVATE", '["10.0.0.0/8", "FD00::/8", "192.0.2.7"]')
    monkeypatch.setenv("SAASSY_EGRESS_HOSTS", '{"Allowed.TEST.": "127.0.0.1"}')

    settings = load_settings()

    assert settings.egress_allow_private == ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]
    assert settings.egress_hosts == {"allowed.test": "127.0.0.1"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SAASSY_EGRESS_ALLOW_PRIVATE", '["10.0.0.0/8", "10.0.0.1/8"]', "'10.0.0.1/8'"),
        ("SAASSY_EGRESS_ALLOW_PRIVATE", '["intranet"]', "'intranet' is not a CIDR range"),
        ("SAASSY_EGRESS_ALLOW_PRIVATE", "10.0.0.0/8", "not valid JSON"),
        ("SAASSY_EGRESS_HOSTS", '{"db.test": "db.internal"}', "'db.internal' is not an IP"),
        ("SAASSY_EGRESS_HOSTS", '{"not a name": "10.0.0.1"}', "'not a name' is not a host"),
        ("SAASSY_EGRESS_HOSTS", "db.test=10.0.0.1", "not valid JSON"),
    ],
)
def test_a_bad_egress_setting_names_the_variable_and_the_entry(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"{variable}:" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('[plans.free]\nname = "Free"\ntasks_per_month = -1\n', "plans.free.tasks_per_month"),
        ('[plans.free]\nname = "Free"\napi_rate_limit = "lots"\n', "plans.free.api_rate_limit"),
        ('[plans.free]\nname = "Free"\nprise = 3\n', "plans.free.prise"),
        ('default_plan = "gold"\n[plans.free]\nname = "Free"\n', "gold"),
        ("[branding\nname = 1\n", "not valid TOML"),
        ('[branding]\naccent_colour = "#ffcc00"\n[plans.free]\nname = "F"\n', "1.5:1"),
        ('[branding]\naccent_colour = "blue"\n[plans.free]\nname = "F"\n', "accent_colour"),
    ],
)
def test_a_broken_catalog_error_names_the_file_and_the_key(
    tmp_path: Path, content: str, named: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert named in str(caught.value)


def test_a_missing_catalog_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=r"nowhere\.toml: file not found"):
        load_settings(config=missing).catalog  # noqa: B018


@pytest.mark.parametrize(
    ("logo", "message"), [("logo.png", "no file at"), ("logo.gif", "is not one of")]
)
def test_a_logo_that_cannot_be_served_stops_start_up(
    tmp_path: Path, logo: str, message: str
) -> None:
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")
    path = tmp_path / "saassy.toml"
    path.write_text(f'[branding]\nlogo = "{logo}"\n[plans.free]\nname = "Free"\n')
    with pytest.raises(ConfigError, match=f"branding.logo: .*{message}"):
        load_settings(config=path).catalog  # noqa: B018


def write_catalog(path: Path, name: str) -> Path:
    path.write_text(f'[branding]\nname = "{name}"\n[plans.free]\nname = "Free"\n')
    return path


def test_the_catalog_is_looked_up_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config, then SAASSY_CONFIG, then ./saassy.toml, then the built-in example."""
    assert load_settings().config_path == EXAMPLE_CONFIG
    assert load_settings().catalog.branding.name == "Saassy"

    write_catalog(tmp_path / "saassy.toml", "Local")
    assert load_settings().catalog.branding.name == "Local"

    monkeypatch.setenv("SAASSY_CONFIG", str(write_catalog(tmp_path / "env.toml", "FromEnv")))
    assert load_settings().catalog.branding.name == "FromEnv"

    option = write_catalog(tmp_path / "option.toml", "FromOption")
    assert load_settings(config=option).catalog.branding.name == "FromOption"


def test_the_example_catalog_ships_the_documented_plans() -> None:
    catalog = load_catalog(EXAMPLE_CONFIG)
    assert list(catalog.plans) == ["free", "starter", "pro", "enterprise"]
    assert catalog.default_plan == "free"
    assert catalog.plans["enterprise"].tasks_per_month is None


def test_running_tasks_unisolated_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAASSY_ENV", "production")
    monkeypatch.setenv("SAASSY_DATABASE_URL", "postgresql://app@db/saassy")
    monkeypatch.setenv("SAASSY_SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("SAASSY_ALLOW_UNISOLATED", "true")
    with pytest.raises(ConfigError, match="SAASSY_ALLOW_UNISOLATED=true is refused in production"):
        load_settings()
    monkeypatch.setenv("SAASSY_ENV", "development")
    assert load_settings().allow_unisolated is True


def test_an_unknown_saassy_variable_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAASSY_DATABSE_URL", "postgresql://app@db/saassy")
    monkeypatch.setenv("saassy_run_engines", "false")  # matched case-insensitively, as settings are
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "SAASSY_DATABSE_URL (did you mean SAASSY_DATABASE_URL?)" in message
    assert "saassy_run_engines (did you mean SAASSY_RUN_ENGINE?)" in message


@pytest.mark.parametrize(
    "name",
    [
        *sorted(READ_ELSEWHERE),
        "SAASSY_TEST_DATABASE_URL",
        "SAASSY_TEST_REDIS_URL",
        "SAASSY_BENCH_REDIS_URL",
        "SAASSY_BENCH_PY_SPY",
    ],
)
def test_variables_other_parts_of_the_product_read_are_not_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "anything")
    assert load_settings().env is Environment.development


def test_every_settings_field_is_a_known_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Derived from the fields: a new setting needs no second list."""
    assert unknown_variables({name: "" for name in setting_variables()}) == []
    assert "SAASSY_DATABASE_URL" in setting_variables()
    monkeypatch.setenv("SAASSY_RUN_ENGINE", "false")
    assert load_settings().run_engine is False


def test_every_saassy_variable_is_documented() -> None:
    """The README's configuration names each setting (the unknown-variable error sends readers
    there), and the README or docs/ each name read elsewhere, in full."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    documented = readme + "".join(
        page.read_text() for page in sorted((root / "docs").rglob("*.md"))
    )
    missing = sorted(
        name for name in setting_variables() if not re.search(rf"\b{name}\b", readme)
    ) + sorted(name for name in READ_ELSEWHERE if not re.search(rf"\b{name}\b", documented))
    assert missing == []


def test_trusted_proxies_are_addresses_or_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trusted_proxies == []  # none by default
    monkeypatch.setenv("SAASSY_TRUSTED_PROXIES", '["10.0.0.5", "192.168.0.0/24"]')
    assert load_settings().trusted_proxies == ["10.0.0.5/32", "192.168.0.0/24"]
    monkeypatch.setenv("SAASSY_TRUSTED_PROXIES", '["proxy.internal"]')
    with pytest.raises(ConfigError, match="SAASSY_TRUSTED_PROXIES: not an IP address or CIDR"):
        load_settings()
