"""Reading and changing a user's e-mail preferences (global to the user, every organization)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.notifications.kinds import KINDS, NotificationKind
from saassy.notifications.repository import PreferenceRepository


async def preferences_of(session: AsyncSession, user_id: uuid.UUID) -> dict[NotificationKind, bool]:
    """Every kind with whether the user gets it: their choice, else the kind's default."""
    chosen = {row.kind: row.enabled for row in await PreferenceRepository(session).of_user(user_id)}
    return {kind: chosen.get(kind.value, info.default) for kind, info in KINDS.items()}


async def update_preferences(
    session: AsyncSession, user_id: uuid.UUID, changes: dict[NotificationKind, bool]
) -> dict[NotificationKind, bool]:
    """Set the kinds given; the others keep what they were. Returns every kind after."""
    preferences = PreferenceRepository(session)
    for kind, enabled in changes.items():
        await preferences.put(user_id, kind, enabled)
    return await preferences_of(session, user_id)
