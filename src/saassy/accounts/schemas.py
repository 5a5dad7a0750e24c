"""Request and response bodies of the auth and account endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from saassy.kit.email_address import EmailAddress
from saassy.models import Role
from saassy.organizations.schemas import OrganizationName

Password = Field(min_length=8, max_length=1024)
# Refresh tokens and magic-link tokens are URL-safe base64 (`secrets.token_urlsafe`).
OpaqueToken = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")


class SignupRequest(BaseModel):
    email: EmailAddress
    password: str = Password
    organization: OrganizationName | None = Field(
        None, description="Name of the first organization."
    )


class LoginRequest(BaseModel):
    email: EmailAddress
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = OpaqueToken


class LogoutRequest(BaseModel):
    refresh_token: str = OpaqueToken


class MagicLinkRequest(BaseModel):
    email: EmailAddress


class MagicLinkAccepted(BaseModel):
    message: str = Field(description="The same for every address, known or not.")


class MagicLinkVerifyRequest(BaseModel):
    token: str = OpaqueToken


class PasswordForgotRequest(BaseModel):
    email: EmailAddress


class PasswordResetRequest(BaseModel):
    token: str = OpaqueToken
    password: str = Password


class PasswordChangeRequest(BaseModel):
    """`current_password` may be left out only by an account that has no password yet."""

    current_password: str | None = Field(default=None, max_length=1024)
    password: str = Password


class EmailVerifyRequest(BaseModel):
    token: str = OpaqueToken


class Accepted(BaseModel):
    message: str


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
    email_verified: bool
    created_at: datetime
    organizations: list[MembershipOut]
