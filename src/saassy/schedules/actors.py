"""Whom a schedule's tasks are submitted as, and whether they still may submit them.

A schedule runs as the member or API key that created it. A member who left the organization
(or whose account was disabled or deleted) and a key that was revoked or expired may not submit
tasks any more, so neither may their schedules: the scheduler pauses such a schedule, saying
why, and whoever resumes it becomes the one it runs as. A key that was rotated hands its
schedules on to the key that replaced it, once its own overlap ends.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import UserRepository
from saassy.api_keys.repository import ApiKeyRepository
from saassy.auth.dependencies import key_expired
from saassy.auth.principal import ActiveOrganization, OrganizationScope, Principal
from saassy.models import ApiKey, Organization, PauseReason, Role, Schedule
from saassy.organizations.repository import MembershipRepository

# A rotated key's replacement may itself have been rotated; past this many, the chain is not
# followed (a key is rotated by hand, so a schedule meets a handful at most).
MAX_ROTATIONS_FOLLOWED = 20

PAUSE_MESSAGES: dict[PauseReason, str] = {
    PauseReason.member_left: "Paused: the member it ran as left the organization; resume it to "
    "run it as you.",
    PauseReason.account_disabled: "Paused: the account it ran as is disabled; resume it to run "
    "it as you.",
    PauseReason.api_key_revoked: "Paused: the API key it ran as was revoked; resume it to run it "
    "as you.",
    PauseReason.api_key_expired: "Paused: the API key it ran as has expired; resume it to run it "
    "as you.",
}


# The same, short enough for a table cell (the dashboard's list).
PAUSE_NOTES: dict[PauseReason, str] = {
    PauseReason.member_left: "Its member left: resume to run it as you.",
    PauseReason.account_disabled: "Its account is disabled: resume to run it as you.",
    PauseReason.api_key_revoked: "Its API key was revoked: resume to run it as you.",
    PauseReason.api_key_expired: "Its API key expired: resume to run it as you.",
}


def pause_note(schedule: Schedule) -> str | None:
    """`pause_message`, short."""
    if not schedule.paused or schedule.paused_reason is None:
        return None
    return PAUSE_NOTES[PauseReason(schedule.paused_reason)]


def pause_message(schedule: Schedule) -> str | None:
    """What to tell people about a schedule a scheduler paused; None for any other."""
    if not schedule.paused or schedule.paused_reason is None:
        return None
    return PAUSE_MESSAGES[PauseReason(schedule.paused_reason)]


def acting_for(
    schedule: Schedule, organization: Organization
) -> tuple[Principal, ActiveOrganization]:
    """Who submits a schedule's task: a member of its organization, attributed to the member or
    key it runs as (checked first by `why_it_cannot_run`)."""
    principal = Principal(
        user_id=schedule.run_as_user_id,
        api_key_id=schedule.run_as_api_key_id,
        is_staff=False,
        roles={organization.id: Role.member},
        default_organization_id=organization.id,
    )
    active = ActiveOrganization(
        id=organization.id,
        role=Role.member,
        plan=organization.plan,
        plan_overrides=organization.plan_overrides or None,
    )
    return principal, active


async def _working_key(
    session: AsyncSession, schedule: Schedule, now: datetime
) -> ApiKey | PauseReason:
    keys = ApiKeyRepository(session)
    key = await keys.get(schedule.run_as_api_key_id) if schedule.run_as_api_key_id else None
    for _ in range(MAX_ROTATIONS_FOLLOWED):
        # Only a rotation's end hands the schedule on: a revoked key stops it.
        if (
            key is None
            or key.revoked_at is not None
            or key.replaced_by_id is None
            or not key_expired(key.expires_at, now)
        ):
            break
        key = await keys.get(key.replaced_by_id)
    if key is None or key.organization_id != schedule.organization_id:
        return PauseReason.api_key_revoked
    if key.revoked_at is not None:
        return PauseReason.api_key_revoked
    if key_expired(key.expires_at, now):
        return PauseReason.api_key_expired
    return key


async def why_it_cannot_run(
    session: AsyncSession, schedule: Schedule, now: datetime
) -> PauseReason | None:
    """None if whoever the schedule runs as may still submit its tasks (a rotated key's
    schedule moves on to its replacement here); else why not."""
    if schedule.run_as_api_key_id is not None:
        key = await _working_key(session, schedule, now)
        if isinstance(key, PauseReason):
            return key
        schedule.run_as_api_key_id = key.id
        return None
    if schedule.run_as_user_id is None:
        return PauseReason.member_left
    user = await UserRepository(session).get(schedule.run_as_user_id)
    membership = await MembershipRepository(session).get_member(
        schedule.organization_id,
        schedule.run_as_user_id,
        OrganizationScope(frozenset({schedule.organization_id})),
    )
    if user is None or membership is None:
        return PauseReason.member_left
    if user.disabled_at is not None:
        return PauseReason.account_disabled
    return None
