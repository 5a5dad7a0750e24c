"""Deleting an account: the request (re-authenticated, from a signed-in session only).

The request stops everything at once, in its own unit of work: sign-in is refused, every
session ends, the organizations that go with the account are soft-deleted (their tasks
canceled, schedules and sealed secrets deleted, API keys revoked). The eraser job
(erasure_jobs.py) then removes the rest and writes the receipt.

An owner cannot leave behind an organization whose other members would be left without one:
while an organization the user owns has other members but no other owner who may still act
(an account whose own deletion is under way, or that is disabled, acts no more: it counts
neither as an owner nor as a member to protect), the request is refused (409 `sole_owner`)
until they hand ownership over or remove the members. The request locks the user's
organizations before counting, as changes to their owners do: two owners asking at once are
counted one after the other. The eraser applies the same rule again before erasing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.email_tokens import Purpose, issue_email_token, redeem_email_token
from saassy.accounts.passwords import WrongPassword, end_other_sessions
from saassy.auth.access_cache import AccessChanged
from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import Conflict, Forbidden
from saassy.kit.time import utcnow
from saassy.models import Organization, Role, User
from saassy.privacy.erasure_repository import ErasureRepository
from saassy.schedules.service import delete_organization_schedules
from saassy.tasks.service import cancel_organization_tasks
from saassy.vault.service import purge_organization_vault

DELETION_CODE_TTL = timedelta(minutes=15)


class SoleOwner(Conflict):
    code = "sole_owner"


class ConfirmationRequired(Forbidden):
    code = "reauthentication_required"


@dataclass(frozen=True)
class DeletionPlan:
    """What a deletion would do: organizations that go with the account, those it leaves."""

    deleted_organizations: list[uuid.UUID]
    left_organizations: list[uuid.UUID]
    blocking_organizations: list[uuid.UUID]


async def plan_deletion(session: AsyncSession, user_id: uuid.UUID) -> DeletionPlan:
    """Which organizations go with the account, which it leaves, which block it."""
    deleted, left, blocking = [], [], []
    for share in await ErasureRepository(session).memberships_of(user_id):
        if share.members == 1:
            deleted.append(share.organization_id)
        elif (
            share.role is Role.owner
            and share.other_live_members > 0
            and share.other_live_owners == 0
        ):
            blocking.append(share.organization_id)
        else:
            left.append(share.organization_id)
    return DeletionPlan(deleted, left, blocking)


def _code_message(settings: Settings, code: str) -> tuple[str, str]:
    name = settings.catalog.branding.name
    minutes = int(DELETION_CODE_TTL / timedelta(minutes=1))
    body = (
        f"Hello,\n\n"
        f"Someone signed in to your {name} account asked to delete it. To confirm, enter this "
        f"code where you asked for it:\n\n"
        f"    {code}\n\n"
        f"The code works once and expires in {minutes} minutes. If you did not ask for it, "
        f"ignore this e-mail and change how you sign in: your account stays as it is.\n"
    )
    return f"Confirm the deletion of your {name} account", body


async def send_deletion_code(session: AsyncSession, settings: Settings, user: User) -> None:
    """E-mail a single-use code that confirms the deletion (for accounts without a password)."""
    code = await issue_email_token(
        session, email=user.email, purpose=Purpose.delete_account, ttl=DELETION_CODE_TTL
    )
    subject, body = _code_message(settings, code)
    await queue_email(session, settings, to=user.email, subject=subject, body=body)


async def _reauthenticate(
    session: AsyncSession, settings: Settings, user: User, password: str | None, code: str | None
) -> None:
    if user.password_hash is not None:
        if not password:
            raise ConfirmationRequired(
                "Enter your password to delete your account.", field="password"
            )
        valid, _ = await settings.password_hasher.verify(password, user.password_hash)
        if not valid:
            raise WrongPassword("The password is not right.", field="password")
        return
    if not code:
        raise ConfirmationRequired(
            "Ask for a confirmation code by e-mail and enter it to delete your account.",
            field="code",
        )
    email = await redeem_email_token(session, code, Purpose.delete_account)
    if email != user.email.lower():
        raise WrongPassword("This confirmation code is not yours.", field="code")


async def request_account_deletion(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    password: str | None,
    code: str | None,
) -> DeletionPlan:
    """Check who asks, refuse if it would orphan an organization, then stop everything of the
    account now; the eraser job deletes it."""
    await _reauthenticate(session, settings, user, password, code)
    # Locked before counting: another owner's deletion or departure commits first, or waits.
    await ErasureRepository(session).lock_organizations_of(user.id)
    plan = await plan_deletion(session, user.id)
    if plan.blocking_organizations:
        raise SoleOwner(
            "You are the only owner of an organization that has other members (an owner "
            "whose account is being deleted does not count): make one of them an owner, or "
            "remove them, before deleting your account.",
            details={"organizations": [str(org_id) for org_id in plan.blocking_organizations]},
        )
    now = utcnow()
    user.disabled_at = user.disabled_at or now
    user.deletion_requested_at = now
    await session.flush()
    await end_other_sessions(session, user.id)
    for org_id in plan.deleted_organizations:
        organization = await session.get(Organization, org_id)
        if organization is not None and organization.deleted_at is None:
            organization.deleted_at = now
    await session.flush()
    await ErasureRepository(session).revoke_keys_of(plan.deleted_organizations, now)
    after_commit(session, AccessChanged())
    await ErasureRepository(session).drop_queued_exports(user.id)
    for org_id in plan.deleted_organizations:
        await cancel_organization_tasks(session, org_id)
        await delete_organization_schedules(session, org_id)
        await purge_organization_vault(session, org_id)
    return plan
