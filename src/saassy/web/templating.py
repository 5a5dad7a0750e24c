"""Rendering pages: one Jinja environment, the filters pages share, and what every page gets
(branding, the CSRF token, a flash message, the signed-in caller)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from saassy.deps import app_context
from saassy.kit.time import utcnow
from saassy.web.cookies import SESSION_COOKIE
from saassy.web.csrf import FORM_FIELD, attach_csrf_cookie, csrf_token
from saassy.web.flash import Kind, clear_flash, flash, read_flash

# Pages run only our own script and styles; `style` attributes (bar widths) are the exception.
# No frame may embed a page (clickjacking), no form may post elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "style-src-attr 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# A token in the address bar must not leak to other sites or stay in a shared cache.
TOKEN_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
env = templates.env
env.trim_blocks = True
env.lstrip_blocks = True


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """ "3 min ago" (or "in 5 min"): the exact time goes in a `<time datetime>` title."""
    if moment is None:
        return "—"
    seconds = int(((now or utcnow()) - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or size == 1:
            n = seconds // size
            text = f"{n} day{'s' if n != 1 else ''}" if unit == "day" else f"{n} {unit}"
            return f"in {text}" if future else f"{text} ago"
    raise AssertionError("unreachable")


def timestamp(moment: datetime | None) -> Markup:
    """A relative time with the exact UTC time as its title and machine-readable value."""
    if moment is None:
        return Markup("—")
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}" data-relative>{}</time>').format(
        moment.isoformat(), exact, ago(moment)
    )


def size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "—"
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def unit_usd(value: Decimal) -> str:
    """A unit price: always to the cent ($0.10, not $0.1), finer when the catalog is ($0.005)."""
    if value.normalize().as_tuple().exponent > -2:  # type: ignore[operator] # finite here
        value = value.quantize(Decimal("0.01"))
    return f"{value:,}"


def short_id(value: uuid.UUID | str) -> str:
    return str(value)[:8]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


env.filters.update(
    ago=ago,
    timestamp=timestamp,
    size=size,
    duration=duration,
    number=number,
    unit_usd=unit_usd,
    short_id=short_id,
    pretty_json=pretty_json,
)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page, with what every page gets; pages are never cached (they show private data)."""
    settings = app_context(request).settings
    message = read_flash(request)
    page: dict[str, Any] = {
        "branding": settings.catalog.branding,
        "csrf_token": csrf_token(request, settings),
        "csrf_field": FORM_FIELD,
        "flash": message,
        "caller": getattr(request.state, "caller", None),
        # Pages that resolve no caller (a 404) still know a signed-in browser by its cookie.
        "session_cookie": SESSION_COOKIE in request.cookies,
        "path": request.url.path,
        "development": settings.env.value == "development",
    }
    page.update(context or {})
    response = templates.TemplateResponse(
        request,
        template,
        page,
        status_code=status_code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    attach_csrf_cookie(request, response, settings)
    if message is not None:
        clear_flash(response, settings)
    return response


def redirect(
    request: Request, url: str, *, message: str | None = None, kind: Kind = "success"
) -> RedirectResponse:
    """303 See Other after a form (Post/Redirect/Get), with an optional flash message."""
    response = RedirectResponse(url, status_code=303)
    if message is not None:
        flash(response, app_context(request).settings, kind, message)
    return response
