"""`/api/v1/account/notifications`: the signed-in user's e-mail preferences."""

from __future__ import annotations

from fastapi import APIRouter

from saassy.auth.dependencies import CurrentUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Session
from saassy.notifications import service
from saassy.notifications.schemas import PreferencesOut, PreferencesUpdate

# Preferences belong to a user, in every organization: an API key (an organization's) has none,
# and `CurrentUser` answers it 403 `user_required`. The rule is declared all the same.
router = APIRouter(
    prefix="/account/notifications", tags=["notifications"], dependencies=[READ_OR_ADMIN]
)


@router.get("")
async def get_preferences(principal: CurrentUser, session: Session) -> PreferencesOut:
    """Which notification e-mails the signed-in user gets."""
    assert principal.user_id is not None
    return PreferencesOut.of(await service.preferences_of(session, principal.user_id))


@router.put("")
async def put_preferences(
    body: PreferencesUpdate, principal: CurrentUser, session: Session
) -> PreferencesOut:
    """Turn kinds of notification e-mail on or off; the kinds not given keep their setting."""
    assert principal.user_id is not None
    chosen = await service.update_preferences(session, principal.user_id, body.changes())
    return PreferencesOut.of(chosen)
