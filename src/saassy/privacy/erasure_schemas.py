"""Bodies of `/api/v1/account/deletion`."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class DeletionRequest(BaseModel):
    password: str | None = Field(
        default=None, max_length=1024, description="The current password, if the account has one."
    )
    code: str | None = Field(
        default=None,
        max_length=256,
        description="For an account without a password: the code e-mailed by "
        "`POST /api/v1/account/deletion/code`.",
    )


class DeletionPlanOut(BaseModel):
    """What deleting the account does to each of its organizations."""

    deleted_organizations: list[uuid.UUID] = Field(
        description="Organizations whose only member is you: deleted with the account."
    )
    left_organizations: list[uuid.UUID] = Field(
        description="Organizations with other members that you leave; their data stays theirs."
    )
    blocking_organizations: list[uuid.UUID] = Field(
        description="Organizations you alone own that have other members (an owner whose own "
        "deletion is under way does not count): the deletion is refused (409 `sole_owner`) "
        "until you make another member an owner or remove them."
    )


class DeletionAccepted(DeletionPlanOut):
    status: str = Field(default="deleting", description="Erasure runs in the background.")
