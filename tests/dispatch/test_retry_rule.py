"""The one retry rule: the type's retries for the program's failures, the platform-loss budget
on top for attempts the platform lost."""

from __future__ import annotations

import pytest

from saassy.dispatch.outcome import AttemptOutcome, retry_follows
from saassy.models import AttemptStatus, Task

LOST = AttemptOutcome(AttemptStatus.lost, retryable=True)
FAILED = AttemptOutcome(AttemptStatus.failed, retryable=True)
FINAL = AttemptOutcome(AttemptStatus.failed, retryable=False)


@pytest.mark.parametrize(
    ("retries", "losses_before", "attempt", "outcome", "again"),
    [
        (0, 0, 1, LOST, True),  # the platform's loss: run it again
        (0, 1, 2, LOST, True),
        (0, 2, 3, LOST, False),  # the budget (2) is spent: the task ends `lost`
        (0, 1, 2, FAILED, False),  # its one attempt of its own failed
        (1, 2, 3, FAILED, True),  # two losses forgiven: this was its first own failure
        (1, 2, 4, FAILED, False),
        (3, 0, 1, FINAL, False),  # not retryable (out of memory, invalid output)
        (2, 0, 3, FAILED, False),
    ],
)
def test_retry_follows(
    retries: int, losses_before: int, attempt: int, outcome: AttemptOutcome, again: bool
) -> None:
    task = Task(max_attempts=retries + 1, platform_losses=losses_before)
    assert retry_follows(task, attempt, outcome, platform_loss_retries=2) is again
