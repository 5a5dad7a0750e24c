"""Where the ring comes from: SAASSY_VAULT_KEYS, refused when missing outside development, and
in development a private key file made once per data dir."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from saassy.config import ConfigError, load_settings
from saassy.vault.keys import MAKE_A_KEY
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY
from tests.test_cli import invoke

ORG = uuid.uuid4()


pytestmark = pytest.mark.usefixtures("clean_environment")


def test_development_makes_a_private_key_once_per_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_settings(data_dir=data_dir).vault_keyring
    key_file = data_dir / "vault.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.stat().st_uid == os.geteuid()
    sealed = first.seal(ORG, "secret", "A", "kept across restarts")

    again = load_settings(data_dir=data_dir).vault_keyring
    assert again.open(ORG, "secret", "A", sealed) == "kept across restarts"
    elsewhere = load_settings(data_dir=tmp_path / "other").vault_keyring
    assert not elsewhere.is_current(ORG, sealed)
    assert [p.name for p in data_dir.iterdir()] == ["vault.key"]


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_settings(data_dir=data_dir).vault_keyring  # noqa: B018
    key_file = data_dir / "vault.key"
    key = key_file.read_text().strip()
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"mode 0644 lets other users read it") as caught:
        load_settings(data_dir=data_dir).vault_keyring  # noqa: B018
    assert f"chmod 600 {key_file}" in str(caught.value)
    assert key not in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_key_file_another_user_owns_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_settings(data_dir=data_dir).vault_keyring  # noqa: B018
    os.chown(data_dir / "vault.key", 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534, not by this user"):
        load_settings(data_dir=data_dir).vault_keyring  # noqa: B018


def test_a_key_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    target = tmp_path / "planted.key"
    target.write_text(TEST_VAULT_KEY)
    target.chmod(0o600)
    (data_dir / "vault.key").symlink_to(target)
    with pytest.raises(ConfigError, match=r"vault\.key: cannot be read"):
        load_settings(data_dir=data_dir).vault_keyring  # noqa: B018


def test_a_garbled_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key_file = data_dir / "vault.key"
    key_file.write_text("not-a-key-at-all\n")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match=r"vault\.key: the key is not url-safe") as caught:
        load_settings(data_dir=data_dir).vault_keyring  # noqa: B018
    assert "not-a-key-at-all" not in str(caught.value)


@pytest.mark.parametrize("env", ["test", "production"])
def test_outside_development_the_keys_must_be_set(env: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SAASSY_VAULT_KEYS must be set") as caught:
        load_settings(env=env, secret_key=TEST_SECRET, database_url="sqlite:///x.db")
    assert MAKE_A_KEY in str(caught.value)
    assert "\n" not in str(caught.value)
    settings = load_settings(
        env=env, secret_key=TEST_SECRET, database_url="sqlite:///x.db", vault_keys=TEST_VAULT_KEY
    )
    assert (
        settings.vault_keyring.open(
            ORG, "secret", "A", settings.vault_keyring.seal(ORG, "secret", "A", "v")
        )
        == "v"
    )
    assert not (tmp_path / ".saassy").exists()


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_malformed_key_is_named_and_not_shown(env: str) -> None:
    wrong = "c2hvcnQta2V5LW9ubHktMjQtYnl0ZXMh"  # 24 bytes
    with pytest.raises(ConfigError, match="SAASSY_VAULT_KEYS: key 2 of 2 is not") as caught:
        load_settings(
            env=env,
            secret_key=TEST_SECRET,
            database_url="sqlite:///x.db",
            vault_keys=f"{TEST_VAULT_KEY},{wrong}",
        )
    assert wrong not in str(caught.value)
    assert TEST_VAULT_KEY not in str(caught.value)


def test_settings_never_show_the_keys() -> None:
    settings = load_settings(vault_keys=TEST_VAULT_KEY)
    assert TEST_VAULT_KEY not in repr(settings)
    assert TEST_VAULT_KEY not in str(settings.model_dump())


def test_the_api_refuses_to_start_in_production_without_vault_keys() -> None:
    result = invoke(
        "api",
        env={
            "SAASSY_ENV": "production",
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_DATABASE_URL": "sqlite:///unused.db",
        },
    )
    assert result.exit_code == 1
    assert "SAASSY_VAULT_KEYS must be set" in result.output
    assert MAKE_A_KEY in " ".join(result.output.split())
    assert "Traceback" not in result.output
