"""The executor interface (Airflow's shape): the dispatcher hands it claimed attempts.

An executor runs an `AttemptSupervisor` for each attempt it is given, somewhere: the local
executor as asyncio tasks in this process, the Celery executor (scale-out) in workers. The
dispatcher only uses this interface, so a new executor needs no change there. The workload is
an `AttemptRef`: identity only, never code, input or secrets. An executor that starts attempts
the instant it is given them (`starts_on_claim`) also gets the claimed task row, so its
supervisor need not read it again; the claim then marks the attempt running in the same
transaction.

Executor ids read `<kind>:<host>:<rest>`, naming the host where the executor's sandboxes run:
adoption recovers a lost attempt's sandbox only on that host (`executor_host`).
"""

from __future__ import annotations

import abc
import uuid

from pydantic import BaseModel, ConfigDict

from saassy.models import Task


class AttemptRef(BaseModel):
    """Which attempt to run: the supervisor loads everything else from the database."""

    model_config = ConfigDict(frozen=True)

    task_id: uuid.UUID
    organization_id: uuid.UUID
    attempt_number: int
    executor_id: str


def executor_host(executor_id: str | None) -> str | None:
    """The host an executor id `<kind>:<host>:<rest>` names; None if it names none."""
    parts = (executor_id or "").split(":")
    return parts[1] if len(parts) >= 3 and parts[1] else None


class Executor(abc.ABC):
    """Runs attempts; `parallelism` bounds how many at once."""

    executor_id: str
    parallelism: int
    # Slots beyond `parallelism` for organizations with nothing running, then for those running
    # less than their fair share (`Dispatcher`): never a flood's.
    reserved_slots: int = 0
    # True when `submit` starts the attempt at once, in this process (no queue in between).
    starts_on_claim: bool = False

    @property
    @abc.abstractmethod
    def active(self) -> int:
        """Attempts submitted and not finished."""

    @property
    def free_slots(self) -> int:
        """Slots any organization may take."""
        return max(0, self.parallelism - self.active)

    @property
    def free_reserved_slots(self) -> int:
        """Free slots of the reserve: for organizations with nothing running, or below a share."""
        return max(0, self.parallelism + self.reserved_slots - self.active) - self.free_slots

    @abc.abstractmethod
    async def start(self) -> None:
        """Get ready to take attempts; adopt what a crashed predecessor left behind."""

    @abc.abstractmethod
    async def submit(self, attempt: AttemptRef, task: Task | None = None) -> None:
        """Run the attempt (already claimed, committed and leased to `executor_id`).

        `task` is the row as the claim left it; executors elsewhere ignore it and load it.
        """

    @abc.abstractmethod
    async def cancel(self, task_id: uuid.UUID) -> bool:
        """Kill the task's running attempt now, if this executor runs it; True if it did."""

    @abc.abstractmethod
    async def heartbeat(self) -> None:
        """Periodic sync: forget finished attempts, surface their errors."""

    @abc.abstractmethod
    async def adopt(self) -> int:
        """Settle attempts whose lease expired (their supervisor died); how many were found."""

    async def sandboxes_to_recover(self) -> set[str]:
        """Sandboxes on this host whose attempts adoption has yet to take over (and measure).

        Freeing leftovers of dead processes must spare these. None by default: an executor
        whose sandboxes run elsewhere leaves nothing on this host for adoption to measure.
        """
        return set()

    @abc.abstractmethod
    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work; let attempts finish for `grace_s`, then kill and hand them back."""
