"""Billing tests talk to Stripe through the real SDK, against localstripe and our double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.billing.stripe_services import StripeServices, running_stripe


@pytest.fixture(scope="session")
def stripe_processes() -> Iterator[StripeServices]:
    """Started once per run: localstripe takes a moment to start."""
    with running_stripe() as services:
        yield services


@pytest.fixture
def stripe_services(stripe_processes: StripeServices) -> StripeServices:
    """The running servers with no objects and no faults left by an earlier test."""
    stripe_processes.flush()
    return stripe_processes
