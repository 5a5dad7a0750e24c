"""Hostile probes of data exports: what an export tells a customer about the operator's
staff, who stay anonymous to customers (as in the dashboard's audit log)."""

from __future__ import annotations

import uuid

import httpx

from saassy.admin.service import set_plan
from saassy.audit.actors import Actor, Origin
from saassy.context import AppContext
from tests.conftest import SignUp
from tests.privacy.support import Archive, build_exports

STAFF_IP = "198.51.100.77"
STAFF_AGENT = "StaffConsole/9.9 (operator laptop)"


async def _export(
    client: httpx.AsyncClient, ctx: AppContext, path: str, headers: dict[str, str]
) -> Archive:
    requested = await client.post(path, headers=headers)
    assert requested.status_code == 202, requested.text
    assert (await build_exports(ctx)).built == 1
    status = await client.get(requested.json()["status_url"], headers=headers)
    download = await client.get(status.json()["download_url"], headers=headers)
    assert download.status_code == 200, download.text
    return Archive.of(download.content)


async def test_a_staff_plan_change_does_not_name_the_staff_member_in_exports(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    staff = await signup()  # any user id: staff are users too
    staff_actor = Actor(uuid.UUID(staff.user_id), None, Origin(STAFF_IP, STAFF_AGENT), staff=True)
    async with ctx.sessionmaker() as session, session.begin():
        await set_plan(
            session,
            ctx.settings.catalog,
            uuid.UUID(ada.organization_id),
            "enterprise",
            actor=staff_actor,
        )

    for path in ("/api/v1/account/export", f"/api/v1/organizations/{ada.organization_id}/export"):
        archive = await _export(client, ctx, path, ada.headers)
        assert archive.table("plan_changes"), path  # the change itself is the customer's
        text = archive.text()
        assert staff.user_id not in text, path
        assert STAFF_IP not in text, path
        assert STAFF_AGENT not in text, path
