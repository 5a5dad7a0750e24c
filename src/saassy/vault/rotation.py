"""Re-sealing the whole vault with the newest key, so older keys can leave the ring.

Batches of items, each in its own short transaction, so the API keeps serving (on SQLite too,
where a transaction holds the one write lock). Each swap is compare-and-set: a value written
meanwhile was sealed with the newest key already and is kept. Items the newest key opens are
skipped, so a second run re-seals nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.vault.errors import VaultItemUnreadable
from saassy.vault.keys import KeyRing, SealBroken
from saassy.vault.repository import VaultRepository

BATCH_SIZE = 200


@dataclass(frozen=True)
class Rotation:
    examined: int
    resealed: int


async def reseal_vault(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    *,
    batch_size: int = BATCH_SIZE,
) -> Rotation:
    """Re-seal every vault item not yet sealed with the ring's newest key."""
    examined = resealed = 0
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker() as session, session.begin():
            vault = VaultRepository(session)
            batch = await vault.sealed_batch(after, batch_size)
            for item_id, organization_id, kind, name, sealed in batch:
                if keyring.is_current(organization_id, sealed):
                    continue
                try:
                    renewed = keyring.reseal(organization_id, sealed)
                except SealBroken as exc:
                    raise VaultItemUnreadable(organization_id, kind, name, str(exc)) from None
                if await vault.replace_sealed(item_id, sealed, renewed):
                    resealed += 1
        examined += len(batch)
        if len(batch) < batch_size:
            return Rotation(examined=examined, resealed=resealed)
        after = batch[-1][0]
