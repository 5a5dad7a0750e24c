"""Several signing secrets: each Stripe event destination signs with its own (the snapshot
endpoint's, the thin-event destination's), and a rolled secret overlaps the old one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from saassy.config import ConfigError, Settings, load_settings
from saassy.context import AppContext
from saassy.models.billing import StripeEvent
from tests.billing.billing_app import billing_settings, deliver, signed
from tests.billing.stripe_services import StripeServices
from tests.billing.test_subscriptions import count

SNAPSHOT, THIN = "whsec_snapshot0destination", "whsec_thin0destination"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(
        settings_factory, tmp_path, stripe_services, stripe_webhook_secret=f"{SNAPSHOT}, {THIN}"
    )


def event(event_id: str) -> dict[str, object]:
    return {"id": event_id, "object": "event", "type": "charge.refunded",
            "data": {"object": {"id": "ch_1"}}}  # fmt: skip


async def test_an_event_signed_with_any_of_the_secrets_is_taken(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    for secret, event_id in ((SNAPSHOT, "evt_snapshot"), (THIN, "evt_thin")):
        response = await deliver(client, signed(event(event_id), secret))
        assert response.status_code == 200, response.text
    refused = await deliver(client, signed(event("evt_other"), "whsec_someone0else"))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert await count(ctx, StripeEvent) == 2


NOT_SECRETS = ["whsec_a,pk_test_b", " , ", "whsec_a whsec_b", "whsec_a;whsec_b"]


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_a_list_with_anything_but_signing_secrets_is_refused_at_load(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAASSY_STRIPE_SECRET_KEY", "sk_test_abc")
    monkeypatch.setenv("SAASSY_STRIPE_WEBHOOK_SECRET", value)
    with pytest.raises(ConfigError, match="SAASSY_STRIPE_WEBHOOK_SECRET: not webhook signing"):
        load_settings()
