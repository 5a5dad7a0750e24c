"""Who is calling, and which organizations they may reach: produced in one place."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saassy.models import ApiKeyScope, Role


@dataclass(frozen=True)
class OrganizationScope:
    """The organizations a caller may read; repositories of tenant data take one of these."""

    ids: frozenset[uuid.UUID]

    def __contains__(self, organization_id: object) -> bool:
        return organization_id in self.ids


@dataclass(frozen=True)
class Principal:
    """A signed-in user (access token) or an organization's API key."""

    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    is_staff: bool
    roles: Mapping[uuid.UUID, Role]
    default_organization_id: uuid.UUID | None
    plans: Mapping[uuid.UUID, str] = field(default_factory=dict)
    # Only the organizations that have contract overrides on top of their plan.
    plan_overrides: Mapping[uuid.UUID, Mapping[str, Any]] = field(default_factory=dict)
    # An API key's scopes; None for a user, whose role alone decides.
    api_key_scopes: frozenset[ApiKeyScope] | None = None

    @property
    def scope(self) -> OrganizationScope:
        return OrganizationScope(frozenset(self.roles))

    def role_in(self, organization_id: uuid.UUID) -> Role | None:
        return self.roles.get(organization_id)

    @property
    def rate_limit_key(self) -> tuple[str, str]:
        if self.api_key_id is not None:
            return ("api_key", str(self.api_key_id))
        return ("user", str(self.user_id))


@dataclass(frozen=True)
class ActiveOrganization:
    """The organization a request acts on, and the caller's role there."""

    id: uuid.UUID
    role: Role
    plan: str
    plan_overrides: Mapping[str, Any] | None = None
