"""Where an invitation e-mail points: shows what the link offers and joins on a POST (a link
opened by a mail scanner or a preview must not use the invitation up)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts.browser_sessions import choose_organization
from saassy.deps import Session
from saassy.kit.errors import SaassyError
from saassy.organizations import invitations
from saassy.organizations.errors import UnknownInvitationToken
from saassy.organizations.schemas import InvitationAccept
from saassy.web.caller import MaybeCaller
from saassy.web.forms import FormInvalid, form_data, parse_form
from saassy.web.templating import TOKEN_PAGE_HEADERS, redirect, render

router = APIRouter()

PATH = "/invitations/accept"


def address_of(token: str) -> str:
    return f"{PATH}?{urlencode({'token': token})}"


async def invitation_page(
    request: Request,
    session: Session,
    caller: MaybeCaller,
    token: str,
    *,
    problem: SaassyError | None = None,
) -> Response:
    """What the link offers the person looking at it, or why it cannot be accepted."""
    offer = None
    if problem is None:
        try:
            parse_form(InvitationAccept, {"token": token})
            offer = await invitations.preview(
                session, token, caller.user.email if caller is not None else None
            )
        except FormInvalid:
            problem = UnknownInvitationToken()
        except SaassyError as exc:
            if exc.status_code >= 500:
                raise
            problem = exc
    here = address_of(token)
    context = {
        "token": token,
        "offer": offer,
        "problem": problem,
        "login_url": "/login?" + urlencode({"next": here}),
        "signup_url": "/signup?" + urlencode({"next": here}),
    }
    status = problem.status_code if problem is not None else 200
    return render(
        request, "invitation.html", context, status_code=status, headers=TOKEN_PAGE_HEADERS
    )


@router.get(PATH, response_class=HTMLResponse)
async def show_invitation(
    request: Request, session: Session, caller: MaybeCaller, token: str = ""
) -> Response:
    return await invitation_page(request, session, caller, token)


@router.post(PATH, response_class=HTMLResponse)
async def accept_invitation(request: Request, session: Session, caller: MaybeCaller) -> Response:
    """Join the organization as the signed-in user, and switch the dashboard to it."""
    token = (await form_data(request)).get("token", "")
    if caller is None:
        # Signed out since the page was shown: sign in, then come back to the same link.
        return redirect(request, "/login?" + urlencode({"next": address_of(token)}))
    try:
        body = parse_form(InvitationAccept, {"token": token})
        organization, role = await invitations.accept(session, caller.principal, body.token)
    except FormInvalid:
        return await invitation_page(
            request, session, caller, token, problem=UnknownInvitationToken()
        )
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return await invitation_page(request, session, caller, token, problem=exc)
    await choose_organization(session, caller.browser_session, organization.id)
    return redirect(
        request, "/app", message=f"You joined the organization as {role.value}; welcome."
    )
