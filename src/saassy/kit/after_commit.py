"""What a unit of work did that the rest of the process may act on only once it is committed.

A service records an effect (a task queued, an e-mail written, a cancel requested) in the
transaction that caused it; whoever commits the session takes the effects and hands them to the
app, which reacts (wakes the dispatcher, the e-mail relay, an executor). A rollback, or a session
closed without a commit, drops them with the transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger(__name__)

_EFFECTS = "saassy.after_commit"

# What acts on a committed session's effects (`AppContext.after_commit` in the app).
Reaction = Callable[[list[object]], Awaitable[None]]


def after_commit(session: AsyncSession, effect: object) -> None:
    """Record `effect` to be acted on after this session's next commit."""
    session.info.setdefault(_EFFECTS, []).append(effect)


def take_effects(session: AsyncSession) -> list[object]:
    """The effects recorded since the last take, oldest first; call right after committing."""
    effects: list[object] = session.info.pop(_EFFECTS, [])
    return effects


def drop_effects(session: AsyncSession) -> None:
    """Forget the recorded effects: their transaction was rolled back."""
    session.info.pop(_EFFECTS, None)


async def act_after_commit(react: Reaction | None, effects: list[object]) -> None:
    """`react` to committed effects where the caller has no app to hand them to (the engine):
    a failure is logged, the commit it follows stands."""
    if react is None or not effects:
        return
    try:
        await react(effects)
    except Exception:
        log.exception("after-commit effects not acted on")
