"""Without SAASSY_STRIPE_SECRET_KEY: billing's endpoints say so, plans stay staff's."""

from __future__ import annotations

import httpx

from tests.conftest import SignUp


async def test_billing_endpoints_answer_billing_disabled(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    state = await client.get("/api/v1/billing", headers=owner.headers)
    assert state.status_code == 200
    assert state.json() == {
        "enabled": False,
        "plan": "free",
        "subscription": None,
        "payment_failed": False,
    }
    for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
        response = await client.post(f"/api/v1/billing/{path}", json=body, headers=owner.headers)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "billing_disabled"
    webhook = await client.post(
        "/api/v1/billing/webhooks/stripe",
        content=b'{"id": "evt_1", "type": "invoice.paid"}',
        headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
    )
    assert webhook.status_code == 409
    assert webhook.json()["error"]["code"] == "billing_disabled"
