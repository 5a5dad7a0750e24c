"""Request and response bodies of the auth and account endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from saassy.models import Role

Password = Field(min_length=8, max_length=1024)


class SignupRequest(BaseModel):
    email: EmailStr = Field(max_length=320)
    password: str = Password
    organization: str | None = Field(
        None, min_length=1, max_length=120, description="Name of the first organization."
    )


class LoginRequest(BaseModel):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str


class OrganizationBrief(BaseModel):
    id: uuid.UUID
    name: str
    plan: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class AuthResponse(TokenPair):
    user: UserOut
    organization: OrganizationBrief


class MembershipOut(BaseModel):
    organization: OrganizationBrief
    role: Role


class MeResponse(BaseModel):
    id: uuid.UUID
    email: str
    is_staff: bool
    created_at: datetime
    organizations: list[MembershipOut]
