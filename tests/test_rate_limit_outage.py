"""Redis out of reach: a counted request is refused with 503 and Retry-After, never let through
uncounted (the login throttles would be lifted exactly then)."""

from __future__ import annotations

import pytest

from saassy.kit.errors import ServiceUnavailable
from saassy.kit.ratelimit import RateLimiter, create_storage
from tests.processes import free_port


@pytest.mark.parametrize("counting", ["hit", "check"])
async def test_unreachable_counters_refuse_with_503(counting: str) -> None:
    limiter = RateLimiter(create_storage(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await getattr(limiter, counting)("5/minute", "login", "someone@example.com")
    finally:
        await limiter.close()
    assert refused.value.status_code == 503
    assert refused.value.code == "rate_limit_unavailable"
    assert refused.value.headers == {"Retry-After": "5"}
