"""Hostile probes of the preferences API: a user's first save, sent twice at once (a double
click, two tabs, a script), must not answer 500."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from saassy.kit.time import utcnow
from saassy.models import NotificationPreference
from saassy.notifications.repository import PreferenceRepository
from tests.conftest import SignUp

PREFERENCES = "/api/v1/account/notifications"


async def test_a_first_save_racing_another_is_not_a_500(
    client: httpx.AsyncClient, signup: SignUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await signup()
    real = PreferenceRepository.one_or_none

    async def one_or_none(self: PreferenceRepository, statement: Any) -> Any:
        found = await real(self, statement)
        if found is None:
            # Another request's insert of the same (user, kind) lands between this one's read
            # and its insert (what two requests at once do on PostgreSQL).
            await self.session.execute(
                insert(NotificationPreference).values(
                    id=uuid.uuid4(),
                    user_id=uuid.UUID(ada.user_id),
                    kind="task_failed",
                    enabled=False,
                    created_at=utcnow(),
                )
            )
        return found

    monkeypatch.setattr(PreferenceRepository, "one_or_none", one_or_none)
    saved = await client.put(PREFERENCES, json={"task_failed": True}, headers=ada.headers)

    assert saved.status_code == 200, saved.text
    chosen = {p["kind"]: p["enabled"] for p in saved.json()["preferences"]}
    assert chosen["task_failed"] is True  # the save asked for wins


async def test_ten_first_saves_at_once_all_succeed(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    saves = await asyncio.gather(
        *(
            client.put(
                PREFERENCES, json={"task_failed": True, "quota_warning": False}, headers=ada.headers
            )
            for _ in range(10)
        )
    )
    assert [s.status_code for s in saves] == [200] * 10
