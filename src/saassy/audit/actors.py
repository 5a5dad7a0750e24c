"""Who performed an audited action, and from where."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from saassy.auth.principal import Principal

USER_AGENT_LENGTH = 512


@dataclass(frozen=True)
class Origin:
    """Where a request came from; empty for work the platform does itself (a sweep, the CLI)."""

    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> Origin:
        return cls(ip or None, (user_agent or "")[:USER_AGENT_LENGTH] or None)


NO_ORIGIN = Origin()


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    origin: Origin
    # Acting as the operator's staff on an organization, not as one of its members.
    staff: bool = False

    @classmethod
    def of(cls, principal: Principal, origin: Origin, *, staff: bool = False) -> Actor:
        return cls(principal.user_id, principal.api_key_id, origin, staff)

    @classmethod
    def user(cls, user_id: uuid.UUID, origin: Origin) -> Actor:
        return cls(user_id, None, origin)

    @classmethod
    def nobody(cls, origin: Origin = NO_ORIGIN) -> Actor:
        """No one signed in (a failed sign-in) or the platform itself (Stripe, a sweep)."""
        return cls(None, None, origin)
