"""Checks of the keys: the secret key and the vault's ring, required outside development."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from saassy.config.choices import Environment
from saassy.kit.secret_key import SecretKeyError, check_secret_key
from saassy.vault.key_file import missing_keys_message
from saassy.vault.keys import VaultKeyError, parse_ring

if TYPE_CHECKING:
    from saassy.config.settings import Settings


def random_secret_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        try:
            check_secret_key(value.get_secret_value())
        except SecretKeyError as exc:
            raise ValueError(str(exc)) from None
    return value


def refuse_default_secrets(settings: Settings) -> Settings:
    if settings.env is not Environment.development:
        if settings.database_url is None:
            raise ValueError("SAASSY_DATABASE_URL must be set outside development")
        if settings.vault_keys is None:
            raise ValueError(missing_keys_message())
    if settings.vault_keys is not None:
        try:
            parse_ring(settings.vault_keys.get_secret_value())
        except VaultKeyError as exc:
            raise ValueError(f"SAASSY_VAULT_KEYS: {exc}") from None
    return settings
