"""The small HTML pages the double hosts in place of Stripe's Checkout and customer portal."""

from __future__ import annotations

from html import escape

from tests.billing.stripe_double.state import Obj

_STYLE = (
    "body{font-family:sans-serif;max-width:32rem;margin:3rem auto}"
    "button{font-size:1rem;margin-right:1rem}"
)


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>")  # fmt: skip


def checkout_page(session: Obj, lines: list[Obj], error: str | None = None) -> str:
    rows = "".join(
        f"<li>{escape(line['description'])}: {escape(line['amount'])}</li>" for line in lines
    )
    alert = f'<p role="alert">{escape(error)}</p>' if error else ""
    pay = f"/checkout/pay/{session['id']}"
    return _page(
        "Checkout (Stripe test double)",
        f"""
<h1>Subscribe</h1>
<p>Stripe test double: no card is charged.</p>
<h2 id="items">Items</h2><ul aria-labelledby="items">{rows}</ul>{alert}
<form method="post" action="{pay}"><button type="submit" name="action" value="pay">Pay</button>
<button type="submit" name="action" value="cancel">Cancel</button></form>""",
    )


def portal_page(session: Obj, subscriptions: list[Obj]) -> str:
    rows = (
        "".join(
            f"<li>{escape(s['id'])}: {escape(str(s.get('status')))}</li>" for s in subscriptions
        )
        or "<li>No subscription</li>"
    )
    return _page(
        "Billing portal (Stripe test double)",
        f"""
<h1>Your subscription</h1>
<h2 id="subs">Subscriptions</h2><ul aria-labelledby="subs">{rows}</ul>
<p><a href="{escape(session["return_url"] or "/")}">Return to the application</a></p>""",
    )
