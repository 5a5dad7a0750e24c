from __future__ import annotations

import httpx

from tests.conftest import SignUp


async def test_signup_answers_tokens_user_and_personal_organization(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": "Ada@Example.com",
            "password": "correct horse battery",
            "organization": "Ada Labs",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] == "ada@example.com"
    assert body["organization"] == {
        "id": body["organization"]["id"],
        "name": "Ada Labs",
        "plan": "free",
    }

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["organizations"][0]["role"] == "owner"


async def test_signup_twice_with_one_email_is_a_conflict(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    await signup("dup@example.com")
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "DUP@example.com", "password": "another password"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"
    assert response.json()["error"]["field"] == "email"


async def test_login_with_the_right_password(client: httpx.AsyncClient, signup: SignUp) -> None:
    account = await signup()
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200
    assert response.json()["organization"]["id"] == account.organization_id
