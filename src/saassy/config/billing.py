"""Checks of the billing settings (`SAASSY_STRIPE_*`, `SAASSY_BILLING_*`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from saassy.config.settings import Settings


def stripe_secret_key(value: SecretStr | None) -> SecretStr | None:
    # A publishable key (pk_) here would fail on every call, long after start-up.
    if value is not None and not re.fullmatch(r"(sk|rk)_(test|live)_\w+", value.get_secret_value()):
        raise ValueError(
            "not a Stripe secret or restricted key (sk_test_..., sk_live_..., rk_...): "
            "Dashboard > Developers > API keys"
        )
    return value


def stripe_webhook_secret(value: SecretStr | None) -> SecretStr | None:
    """One signing secret, or several separated by commas: each event destination signs with
    its own (the thin-event one too), and a rolled secret overlaps the old for a while."""
    if value is None:
        return None
    secrets = webhook_secrets(value)
    if not secrets or not all(re.fullmatch(r"whsec_\w+", secret) for secret in secrets):
        raise ValueError(
            "not webhook signing secrets (whsec_..., several separated by commas): "
            "Dashboard > Developers > Webhooks > the destination > Signing secret"
        )
    return value


def webhook_secrets(value: SecretStr) -> list[str]:
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]


def api_base(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^/@\s]+/?", value):
        raise ValueError("write the server's address alone, e.g. 'http://127.0.0.1:12111'")
    return value.rstrip("/") if value is not None else None


def billing_window(value: int) -> int:
    # Windows must tile every hour, so a month (and Stripe's hourly summaries) is whole windows.
    if 3600 % value:
        raise ValueError("must divide 3600 (an hour) evenly: 60, 120, 300, 600, 900, 1800, 3600...")
    return value


def whole_stripe_configuration(settings: Settings) -> Settings:
    if settings.stripe_secret_key is not None:
        if settings.stripe_webhook_secret is None:
            raise ValueError(
                "SAASSY_STRIPE_SECRET_KEY needs SAASSY_STRIPE_WEBHOOK_SECRET: plans change "
                "only on Stripe's signed webhooks (docs/billing.md says how to add the endpoint)"
            )
        return settings
    ignored = sorted(
        f"SAASSY_{name.upper()}"
        for name in ("stripe_webhook_secret", "stripe_api_base")
        if getattr(settings, name) is not None
    )
    if ignored:
        raise ValueError(
            f"{', '.join(ignored)} set but SAASSY_STRIPE_SECRET_KEY is not: billing is off "
            "without it; set it, or unset them"
        )
    return settings
