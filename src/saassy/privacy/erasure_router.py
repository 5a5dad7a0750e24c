"""`/api/v1/account/deletion`: deleting the signed-in user's account (never with an API key)."""

from __future__ import annotations

from fastapi import APIRouter, status

from saassy.accounts import throttle
from saassy.accounts.schemas import Accepted
from saassy.auth.dependencies import CurrentUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import ClientIP, Limiter, Session, SettingsDep
from saassy.kit.errors import Conflict
from saassy.models import User
from saassy.privacy import erasure
from saassy.privacy.erasure_schemas import DeletionAccepted, DeletionPlanOut, DeletionRequest

# An API key is refused by `CurrentUser` (403 `user_required`) whatever its scopes: only a
# signed-in person may delete their account. The rule is still declared, as on every router.
router = APIRouter(prefix="/account/deletion", tags=["account"], dependencies=[READ_OR_ADMIN])

CODE_SENT = Accepted(message="A confirmation code is on its way to your address.")


class PasswordAccount(Conflict):
    code = "password_required"


async def _user(principal: CurrentUser, session: Session) -> User:
    assert principal.user_id is not None
    user = await session.get(User, principal.user_id)
    assert user is not None
    return user


def _plan_out(plan: erasure.DeletionPlan) -> dict[str, object]:
    return {
        "deleted_organizations": plan.deleted_organizations,
        "left_organizations": plan.left_organizations,
        "blocking_organizations": plan.blocking_organizations,
    }


@router.get("")
async def preview_deletion(principal: CurrentUser, session: Session) -> DeletionPlanOut:
    """What deleting the account would do to each of its organizations."""
    assert principal.user_id is not None
    return DeletionPlanOut.model_validate(
        _plan_out(await erasure.plan_deletion(session, principal.user_id))
    )


@router.post("/code", status_code=status.HTTP_202_ACCEPTED)
async def send_deletion_code(
    principal: CurrentUser,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> Accepted:
    """E-mail a code that confirms the deletion of an account without a password."""
    user = await _user(principal, session)
    if user.password_hash is not None:
        raise PasswordAccount("This account has a password: confirm with it instead.")
    await throttle.admit_email_request(
        limiter, settings, kind="delete-account", email=user.email, ip=ip
    )
    await erasure.send_deletion_code(session, settings, user)
    return CODE_SENT


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def delete_account(
    body: DeletionRequest,
    principal: CurrentUser,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    ip: ClientIP,
) -> DeletionAccepted:
    """Delete the account (re-authenticated): sign-in and sessions end now, the organizations
    it alone belongs to are deleted with it, and the rest is erased in the background."""
    user = await _user(principal, session)
    if body.password:
        # A password tried here is a guess like one at the login: the same limits count it.
        await throttle.admit_login_attempt(limiter, settings, email=user.email, ip=ip, device=None)
    plan = await erasure.request_account_deletion(
        session, settings, user, password=body.password, code=body.code
    )
    return DeletionAccepted.model_validate(_plan_out(plan))
