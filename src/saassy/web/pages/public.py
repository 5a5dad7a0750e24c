"""Public pages: landing, pricing, docs, legal, and the operator's brand assets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from saassy.billing.repository import SubscriptionRepository
from saassy.billing.states import HOLDING
from saassy.billing.stripe_api import billing_enabled
from saassy.deps import Session, SettingsDep
from saassy.kit.errors import NotFound
from saassy.models import Role
from saassy.plans.catalog import LOGO_TYPES
from saassy.tasks.service import list_task_types
from saassy.web.caller import MaybeCaller
from saassy.web.pages.billing_view import billing_page_headers, sold_plans
from saassy.web.templating import render

router = APIRouter()

# Markdown from the operator's config, never HTML: "js-default" turns raw HTML off.
markdown = MarkdownIt("js-default")


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, settings: SettingsDep, caller: MaybeCaller) -> Response:
    """What the operator sells, from the branding in saassy.toml, and a clear way in."""
    return render(request, "public/landing.html", {"task_types": list_task_types(settings.catalog)})


@router.get("/pricing", response_class=HTMLResponse)
async def pricing(
    request: Request, settings: SettingsDep, session: Session, caller: MaybeCaller
) -> Response:
    """The public plans; an owner or admin signed in can buy a paid one through checkout."""
    catalog = settings.catalog
    buyer = caller is not None and caller.can(Role.admin)
    subscribed = False
    if caller is not None and billing_enabled(settings):
        found = await SubscriptionRepository(session).of_organization(caller.organization.id)
        subscribed = found is not None and found.status in HOLDING
    return render(
        request,
        "public/pricing.html",
        {
            "plans": [p for p in catalog.plans.values() if p.public],
            "default_plan": catalog.default_plan,
            "sold": sold_plans(settings),
            "buyer": buyer,
            "subscribed": subscribed,
            "billing": billing_enabled(settings),
            "current_plan": caller.organization.plan if caller is not None else None,
        },
        headers=billing_page_headers(settings),
    )


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request, settings: SettingsDep, caller: MaybeCaller) -> Response:
    return render(
        request,
        "public/docs.html",
        {
            "task_types": list_task_types(settings.catalog),
            "base_url": settings.base_url.rstrip("/"),
        },
    )


@router.get("/legal/{page}", response_class=HTMLResponse)
async def legal(
    page: str, request: Request, settings: SettingsDep, caller: MaybeCaller
) -> Response:
    branding = settings.catalog.branding
    texts = {
        "terms": ("Terms of service", branding.terms),
        "privacy": ("Privacy policy", branding.privacy),
    }
    if page not in texts:
        raise NotFound("Page")
    title, text = texts[page]
    body = Markup(markdown.render(text)) if text.strip() else None  # noqa: S704 - HTML is off
    return render(request, "public/legal.html", {"title": title, "body": body})


@router.get("/brand/theme.css")
async def theme(settings: SettingsDep) -> Response:
    """The operator's accent colour as a stylesheet, so pages need no inline style."""
    accent = settings.catalog.branding.accent_colour  # validated: #rrggbb
    return Response(
        f":root {{ --accent: {accent}; }}\n",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/favicon.ico")
async def favicon(settings: SettingsDep) -> Response:
    """Browsers ask for it on every site: the logo when there is one, else nothing (not a
    404 page rendered for each visit)."""
    if settings.catalog.branding.logo is not None:
        return RedirectResponse("/brand/logo", status_code=301)
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/brand/logo")
async def logo(settings: SettingsDep) -> Response:
    path = settings.catalog.branding.logo_path(settings.config_path.parent)
    if path is None:
        raise NotFound("Logo")
    media_type = LOGO_TYPES[path.suffix.lower()]  # checked at start-up
    # An SVG may hold script: served as an image that can run nothing even if opened directly.
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Cache-Control": "public, max-age=300",
        },
    )
