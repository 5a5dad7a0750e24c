"""The dispatcher's wake-up, and what woke it.

A plain `set()` says anything may have changed: a slot freed, an attempt adopted, another
process's news. `set_for(organization)` says only that this organization queued tasks. The
difference matters when nothing but reserved slots is free: the reserve is for organizations
running less than their share, so a flooding organization's every submission would otherwise buy
a round (a transaction and two queries) that cannot serve it.
"""

from __future__ import annotations

import asyncio
import uuid


class Wakeup(asyncio.Event):
    def __init__(self) -> None:
        super().__init__()
        self._anything = False
        self._organizations: set[uuid.UUID] = set()

    def set(self) -> None:
        self._anything = True
        super().set()

    def set_for(self, organization_id: uuid.UUID) -> None:
        """Only `organization_id` has newly queued tasks."""
        self._organizations.add(organization_id)
        super().set()

    def take(self) -> frozenset[uuid.UUID] | None:
        """Clear it, and say what woke it: the organizations whose submissions alone did, or
        None when anything may have changed (a plain `set()`, or nothing: a poll)."""
        organizations = None if self._anything else frozenset(self._organizations)
        self._anything = False
        self._organizations = set()
        self.clear()
        return organizations or None
