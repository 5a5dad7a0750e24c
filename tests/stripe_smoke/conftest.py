"""`make stripe-smoke`: billing's flows against Stripe itself, in test mode.

Not part of `make test` (pyproject's `--ignore`): it needs the network and a test-mode key,
`STRIPE_SMOKE_SECRET_KEY=sk_test_...`, and leaves test objects in that Stripe account (products
and meters named saassy_*; customers and subscriptions it makes are deleted or canceled)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from saassy.config import Settings
from tests.billing.billing_app import write_catalog

KEY_VARIABLE = "STRIPE_SMOKE_SECRET_KEY"


def smoke_key() -> str:
    key = os.environ.get(KEY_VARIABLE, "")
    if not key.startswith("sk_test_"):
        pytest.fail(f"make stripe-smoke needs {KEY_VARIABLE}=sk_test_... (a test-mode key)")
    return key


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(
        config=write_catalog(tmp_path),
        stripe_secret_key=smoke_key(),
        # Stripe cannot reach this machine: the flows re-read objects as the webhook would.
        stripe_webhook_secret=f"whsec_{secrets.token_hex(16)}",
    )
