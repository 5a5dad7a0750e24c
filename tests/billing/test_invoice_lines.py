"""What the billing page takes from an invoice Stripe lists: its links only when they are web
addresses, so no answer from a Stripe-compatible server puts a script URL in the page."""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from saassy.billing.invoices import _line


def invoice(**fields: object) -> stripe.Invoice:
    return stripe.Invoice.construct_from(
        {"id": "in_1", "object": "invoice", "created": 1_790_000_000, "total": 4900, **fields},
        "sk_test_x",
    )


def test_stripes_links_are_kept() -> None:
    line = _line(invoice(invoice_pdf="https://pay.stripe.com/invoice/acct_1/pdf",
                         hosted_invoice_url="https://invoice.stripe.com/i/acct_1"))  # fmt: skip
    assert line.pdf_url == "https://pay.stripe.com/invoice/acct_1/pdf"
    assert line.hosted_url == "https://invoice.stripe.com/i/acct_1"
    assert line.amount_usd == Decimal("49.00")


@pytest.mark.parametrize(
    "address",
    ["javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,<script>",
     "vbscript:msgbox", "//evil.example/x", 42],
)  # fmt: skip
def test_a_link_that_is_no_web_address_is_dropped(address: object) -> None:
    line = _line(invoice(invoice_pdf=address, hosted_invoice_url=address))
    assert (line.pdf_url, line.hosted_url) == (None, None)
