"""Request and response bodies of the organization, member and invitation endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

from saassy.kit.display_names import no_control_characters, trimmed
from saassy.kit.email_address import EmailAddress
from saassy.models import Role

OrganizationName = Annotated[
    str,
    BeforeValidator(trimmed),
    StringConstraints(min_length=1, max_length=120),
    AfterValidator(no_control_characters),
]


class OrganizationCreate(BaseModel):
    name: OrganizationName


class OrganizationUpdate(BaseModel):
    name: OrganizationName


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    plan: str
    personal: bool
    role: Role = Field(description="The caller's role in this organization.")
    created_at: datetime


class MemberOut(BaseModel):
    id: uuid.UUID = Field(description="The membership's id.")
    user_id: uuid.UUID
    email: str
    role: Role
    joined_at: datetime


class MemberUpdate(BaseModel):
    role: Role


class InvitationCreate(BaseModel):
    email: EmailAddress
    role: Role = Role.member


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    invited_by_user_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class InvitationAccept(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class AcceptedInvitation(BaseModel):
    organization: OrganizationOut
    role: Role
