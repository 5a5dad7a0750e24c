"""Checks of the rate-limit settings (`SAASSY_*_LIMIT_*`)."""

from limits import parse_many


def rate_limit(value: str) -> str:
    # Parsed here so a typo stops start-up instead of failing every request it governs.
    try:
        limits = parse_many(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: write e.g. '5/15 minutes' or '120/minute'"
        ) from None
    # A zero amount would refuse every request it governs (each login, each redelivery): a
    # mistake rather than a setting, so it stops start-up too.
    if any(limit.amount < 1 for limit in limits):
        raise ValueError(
            f"{value!r} allows nothing: a rate limit needs at least 1 a period, e.g. '1/hour'"
        )
    return value
