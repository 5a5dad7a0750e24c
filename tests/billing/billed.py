"""Settings and processes for billing tests that reach the Stripe double."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import saassy
from saassy.config import Settings
from tests.billing.ledger import overage_config
from tests.billing.stripe_services import API_KEY, StripeServices

SOURCE = Path(saassy.__file__).resolve().parents[1]  # the tree under test, not an install


def billing_settings(
    settings_factory: Callable[..., Settings], services: StripeServices, directory: Path,
    window_s: int = 3600,
) -> Settings:  # fmt: skip
    return settings_factory(
        config=overage_config(directory),
        stripe_secret_key=API_KEY,
        stripe_webhook_secret="whsec_test",
        stripe_api_base=services.api_base,
        billing_window_s=window_s,
    )


def saassy_environment(settings: Settings) -> dict[str, str]:
    """The SAASSY_* variables a `saassy` process needs to run with `settings`."""
    assert settings.stripe_secret_key is not None
    assert settings.secret_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
    return {
        **env,
        "PYTHONPATH": str(SOURCE),
        "PYTHONUNBUFFERED": "1",
        "SAASSY_ENV": "test",
        "SAASSY_DATABASE_URL": settings.resolved_database_url,
        "SAASSY_DATA_DIR": str(settings.data_dir),
        "SAASSY_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SAASSY_VAULT_KEYS": settings.vault_keys.get_secret_value() if settings.vault_keys else "",
        "SAASSY_CONFIG": str(settings.config_path),
        "SAASSY_STRIPE_SECRET_KEY": settings.stripe_secret_key.get_secret_value(),
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_test",
        "SAASSY_STRIPE_API_BASE": str(settings.stripe_api_base),
        "SAASSY_BILLING_WINDOW_S": str(settings.billing_window_s),
    }


def saassy_process(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`saassy <args>` as its own process, its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "saassy.cli", *args],
            cwd=log.parent, env=saassy_environment(settings), stdout=out, stderr=out,
        )  # fmt: skip
