"""The eraser: accounts whose deletion was asked for are erased in the background.

For each account, once no task of its organizations is still running (the request canceled
them; the executors end the running ones): the organizations' Stripe subscriptions are
canceled (billing on), their stored objects deleted, then one transaction removes every row
erasure_tables.py assigns to the account, pseudonymizes the audit log and writes the receipt
(`account.deleted`). A failure leaves the account for the next round: each step can be done
again. Runs where the other sweeps run; several erasers at once lock the user's row.

Before erasing, the eraser checks again (under the organizations' lock, as the request did)
that the account does not leave an organization ownerless: if one still has members whose
accounts are not being deleted and no other owner who may act, the account is not erased but
waits, with a warning each round, until someone is made an owner or the members are removed.
The request refuses such deletions; this only catches what got past it (an older version).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor
from saassy.audit.service import Target, email_hash, record
from saassy.billing.stripe_connection import open_stripe_client
from saassy.config import Settings
from saassy.email.outbox import outbox_sealer
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import log_failed_round
from saassy.kit.time import utcnow
from saassy.models import User
from saassy.models.base import Base
from saassy.privacy.erasure_repository import ErasureRepository, table
from saassy.privacy.erasure_tables import ERASURE
from saassy.storage.base import ArtifactStorage

log = structlog.get_logger(__name__)

ERASE_EVERY_S = 30.0
BATCH = 20
OUTBOX_PAGE = 500

# The receipt's counts are named after their tables, but an audit detail's name may not
# contain a word that suggests a secret or an address.
RECEIPT_NAMES = {
    "api_keys": "api_credentials",
    "refresh_tokens": "api_sessions",
    "outbox_emails": "outbox_messages",
    "vault_items": "vault_items",
}


@dataclass(frozen=True)
class Erased:
    """What one erasure removed: rows per table, stored objects, and the pseudonym."""

    pseudonym: uuid.UUID
    rows: dict[str, int]
    stored_objects: int


class AccountEraser:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        storage: ArtifactStorage,
        *,
        every_s: float = ERASE_EVERY_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.storage = storage
        self.every_s = every_s
        self.clock = clock
        self._loop = BackgroundLoop(self._run, "account eraser")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def erase_due(self) -> list[Erased]:
        """Erase every account whose deletion was asked for and whose work has ended."""
        done = []
        after = None
        while True:  # page by page: accounts that wait do not hold back those behind them
            async with self.sessionmaker() as session:
                due = await ErasureRepository(session).requested(BATCH, after)
            for _, user_id in due:
                erased = await self.erase(user_id)
                if erased is not None:
                    done.append(erased)
            if len(due) < BATCH:
                return done
            after = due[-1]

    async def erase(self, user_id: uuid.UUID) -> Erased | None:
        """Erase one account; None while its tasks still run (or it is not to be erased)."""
        async with self.sessionmaker() as session:
            repository = ErasureRepository(session)
            user = await session.get(User, user_id)
            if user is None or user.deletion_requested_at is None:
                return None
            if await self._orphans(repository, user_id):
                return None  # it waits: the members would be left without an owner
            organizations = await repository.sole_member_organizations(user_id)
            if await repository.unfinished_tasks(organizations):
                return None  # canceled at the request; the executors are ending them
            if await repository.exports_being_built(user_id, organizations):
                return None  # its archive would be stored after the eraser looked
            subscriptions = await repository.live_subscriptions(organizations)
            archives = await repository.export_archives(user_id, organizations)
        if subscriptions:
            await self._cancel_subscriptions(subscriptions)
        stored = 0
        for org_id in organizations:
            for key in await self.storage.keys(f"{org_id}/"):
                await self.storage.delete(key)
                stored += 1
        for key in archives:  # data exports live under exports/, not their organization's
            await self.storage.delete(key)
            stored += 1
        async with self.sessionmaker() as session, session.begin():
            erased = await self._erase_rows(session, user_id, stored)
        if erased is not None:
            log.info(
                "account.erased",
                pseudonym=str(erased.pseudonym),
                organizations=erased.rows.get("organizations", 0),
                stored_objects=stored,
            )
        return erased

    @staticmethod
    async def _orphans(repository: ErasureRepository, user_id: uuid.UUID) -> bool:
        """Whether erasing the user now would leave an organization's members without an owner
        (logged: someone must make one of them an owner, or remove them)."""
        orphaned = await repository.orphaned_by(user_id)
        if orphaned:
            # The organizations stay, so their ids may be logged; the user's may not.
            log.warning(
                "account.erasure_waits_for_owner",
                organizations=[str(org_id) for org_id in orphaned],
            )
        return bool(orphaned)

    async def _cancel_subscriptions(self, subscription_ids: Sequence[str]) -> None:
        async with open_stripe_client(self.settings) as client:
            if client is None:
                # Billing was turned off since: nothing at Stripe can be reached to cancel.
                log.warning("account.erasure_subscriptions_left", count=len(subscription_ids))
                return
            for subscription_id in subscription_ids:
                try:
                    await client.v1.subscriptions.cancel_async(subscription_id)
                except stripe.InvalidRequestError as exc:
                    if exc.http_status != 404:  # already gone at Stripe: nothing to cancel
                        raise

    async def _erase_rows(
        self, session: AsyncSession, user_id: uuid.UUID, stored: int
    ) -> Erased | None:
        repository = ErasureRepository(session)
        user = await repository.user_for_update(user_id)
        if user is None or user.deletion_requested_at is None:
            return None  # another eraser got there first
        # The organizations locked, as membership changes lock them: none gains or loses an
        # owner between this check and the commit.
        await repository.lock_organizations_of(user_id)
        if await self._orphans(repository, user_id):
            return None
        email = user.email.lower()
        organizations = await repository.sole_member_organizations(user_id)
        pseudonym = uuid.uuid4()
        rows: dict[str, int] = {}

        rows["outbox_emails"] = await self._delete_outbox(repository, email)
        rows["magic_links"] = await repository.delete_magic_links(email)
        rows["invitations"] = await repository.delete_invitations(user_id, email)
        rows["webhook_attempts"] = await repository.delete_webhook_attempts(organizations)
        rows["notices_sent"] = await repository.delete_notices(user_id, organizations)
        await repository.pseudonymize_audit(
            user_id,
            pseudonym,
            email_hash(self.settings.signing_secret, email),
            {org_id: uuid.uuid4() for org_id in organizations},
        )
        await repository.pseudonymize_plan_changes(user_id, pseudonym)
        await repository.clear_where(table("browser_sessions"), "organization_id", organizations)
        for each in reversed(Base.metadata.sorted_tables):
            erasure = ERASURE[each.name]
            for column in erasure.cleared:
                await repository.clear_where(each, column, [user_id])
            count = 0
            for column in erasure.deleted_by_user:
                count += await repository.delete_where(each, column, [user_id])
            if erasure.deleted_by_organization is not None:
                count += await repository.delete_where(
                    each, erasure.deleted_by_organization, organizations
                )
            if count:
                rows[each.name] = rows.get(each.name, 0) + count
        rows["organizations"] = await repository.delete_where(
            table("organizations"), "id", organizations
        )
        requested_at = user.deletion_requested_at
        await session.delete(user)
        await session.flush()
        await record(
            session,
            AuditAction.account_deleted,
            Actor.nobody(),
            target=Target(TargetType.user, pseudonym),
            details={
                "requested_at": requested_at.isoformat(),
                "stored_objects": stored,
                **{RECEIPT_NAMES.get(name, name): n for name, n in sorted(rows.items()) if n},
            },
        )
        return Erased(pseudonym, rows, stored)

    async def _delete_outbox(self, repository: ErasureRepository, email: str) -> int:
        """E-mails to the user, and those whose subject or sealed body names their address."""
        sealer = outbox_sealer(self.settings)
        doomed = []
        after = None
        while page := await repository.outbox_page(after, OUTBOX_PAGE):
            for email_id, to_address, subject, body in page:
                if to_address.lower() == email or email in subject.lower():
                    doomed.append(email_id)
                    continue
                try:
                    opened = sealer.open(body)
                except ValueError:
                    continue  # sealed under a retired key: unreadable to anyone
                if email in opened.lower():
                    doomed.append(email_id)
            after = page[-1][0]
        return await repository.delete_where(table("outbox_emails"), "id", doomed)

    async def _run(self) -> None:
        while True:
            try:
                await self.erase_due()
            except Exception as exc:  # the next round tries again; each step can be redone
                log_failed_round(log, "account.erasure_failed", exc)
            await asyncio.sleep(self.every_s)
