"""Checks of the rate-limit settings (`SAASSY_*_LIMIT_*`)."""

from limits import parse_many


def rate_limit(value: str) -> str:
    # Parsed here so a typo stops start-up instead of failing every request it governs.
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: write e.g. '5/15 minutes' or '120/minute'"
        ) from None
    return value
