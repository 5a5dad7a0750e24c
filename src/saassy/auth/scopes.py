"""Which API-key scope each API route needs, decided once per router.

Every router under `/api/v1` declares a `ScopeRule` among its dependencies: reads (GET, HEAD)
need `read`, anything else the rule's write scope. The rule itself only declares; the principal
dependency enforces it when the caller is an API key, so a route that takes no credential is
not made to authenticate. A test fails when an API route has no rule; at run time a key on a
route without one needs `admin`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends
from fastapi.params import Depends as DependsParam

from saassy.kit.errors import Forbidden
from saassy.models import ApiKeyScope

READ_METHODS = frozenset({"GET", "HEAD"})

# What holding each scope allows: `admin` is every scope, `tasks:write` includes `read`.
IMPLIED: dict[ApiKeyScope, frozenset[ApiKeyScope]] = {
    ApiKeyScope.read: frozenset({ApiKeyScope.read}),
    ApiKeyScope.tasks_write: frozenset({ApiKeyScope.read, ApiKeyScope.tasks_write}),
    ApiKeyScope.admin: frozenset(ApiKeyScope),
}


class InsufficientScope(Forbidden):
    def __init__(self, needed: ApiKeyScope) -> None:
        super().__init__(
            f"This API key lacks the {needed.value} scope this request needs; use a key that "
            "has it, or ask an admin of the organization for one.",
            code="insufficient_scope",
            details={"scope": needed.value},
        )


@dataclass(frozen=True)
class ScopeRule:
    """A router's decision: reads need `read`, other methods need `write`."""

    write: ApiKeyScope

    def needed_for(self, method: str) -> ApiKeyScope:
        return ApiKeyScope.read if method in READ_METHODS else self.write

    async def __call__(self) -> None:
        """Declares only: `get_principal` enforces, for API keys."""


def granted(scopes: frozenset[ApiKeyScope]) -> frozenset[ApiKeyScope]:
    """Every scope that holding `scopes` allows."""
    return frozenset().union(*(IMPLIED[scope] for scope in scopes))


def rule_of(route: object) -> ScopeRule | None:
    """The scope rule a route declares (the last one, so a route may narrow its router's)."""
    for depends in reversed(getattr(route, "dependencies", ())):
        if isinstance(depends, DependsParam) and isinstance(depends.dependency, ScopeRule):
            return depends.dependency
    return None


def require_scope(route: object, method: str, scopes: frozenset[ApiKeyScope]) -> None:
    """Refuse (403 `insufficient_scope`) a key whose scopes do not cover this route."""
    rule = rule_of(route)
    needed = rule.needed_for(method) if rule is not None else ApiKeyScope.admin
    if needed not in granted(scopes):
        raise InsufficientScope(needed)


# The rules routers use. Routes that take no credential carry one too: the decision is still
# explicit, and it holds should the route ever accept a key.
READ_OR_ADMIN = Depends(ScopeRule(ApiKeyScope.admin))
READ_OR_TASKS = Depends(ScopeRule(ApiKeyScope.tasks_write))
