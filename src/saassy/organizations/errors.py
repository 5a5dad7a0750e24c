"""What organization, member and invitation requests can fail with (each with its own code)."""

from __future__ import annotations

from saassy.kit.errors import BadRequest, Conflict, Forbidden, NotFound


class OrganizationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Organization")


class MemberNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Member")


class InvitationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Invitation")


class UnknownInvitationToken(NotFound):
    code = "invitation_not_found"

    def __init__(self) -> None:
        super().__init__("Invitation")


class RoleRequired(Forbidden):
    code = "role_required"


class OwnerRequired(Forbidden):
    code = "owner_required"


class RoleTooHigh(Forbidden):
    code = "role_too_high"


class PersonalOrganization(Conflict):
    code = "personal_organization"


class LastOwner(Conflict):
    code = "last_owner"


class TooManyOrganizations(Conflict):
    """The user owns as many organizations as one may create (SAASSY_ORGANIZATIONS_PER_USER)."""

    code = "organization_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You own {limit} organizations, as many as one person may; delete one you no "
            "longer use, or hand its ownership to someone else, to create another.",
            details={"limit": limit},
        )


class AlreadyMember(Conflict):
    code = "already_member"


class InvitationEmailMismatch(Forbidden):
    code = "invitation_email_mismatch"


class InvitationRevoked(BadRequest):
    code = "invitation_revoked"


class InvitationExpired(BadRequest):
    code = "invitation_expired"


class InvitationUsed(Conflict):
    code = "invitation_used"
