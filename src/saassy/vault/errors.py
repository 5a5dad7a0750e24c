"""What vault requests and the engine's reads can fail with; no message ever holds a value."""

from __future__ import annotations

import uuid

from saassy.kit.errors import Conflict, Forbidden, NotFound, SaassyError, ValidationFailed


class SecretNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Secret")


class SecretWriterRequired(Forbidden):
    code = "role_required"


class SecretMissing(ValidationFailed):
    """A task type needs secrets the organization has not stored; names the first."""

    code = "secret_missing"

    def __init__(self, missing: list[str], task_type: str | None = None) -> None:
        name = missing[0]
        needs = f"Task type {task_type!r} needs" if task_type else "The task needs"
        super().__init__(
            f"secrets.{name}: {needs} the secret {name!r}, which this organization has not "
            f"stored; an admin or owner adds it with PUT /api/v1/secrets/{name}.",
            field=f"secrets.{name}",
            details={"missing": missing},
        )


class VaultItemUnreadable(SaassyError):
    """A stored item opens with no key of the ring: a key was dropped before rotating."""

    code = "vault_item_unreadable"

    def __init__(self, organization_id: uuid.UUID, kind: str, name: str, reason: str) -> None:
        super().__init__(
            f"The vault {kind} {name!r} of organization {organization_id} cannot be opened: "
            f"{reason}. If a key was removed from SAASSY_VAULT_KEYS, put it back (last in the "
            "list) and run `saassy vault rotate` before removing it again.",
            details={"organization_id": str(organization_id), "kind": kind, "name": name},
        )


class TooManySecrets(Conflict):
    """The organization holds as many secrets as one may."""

    code = "secret_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"An organization may store at most {limit} secrets; delete one to add another.",
            field="name",
            details={"limit": limit},
        )
