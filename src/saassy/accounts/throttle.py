"""Limits on password guessing and on magic-link requests.

Three login limits, checked from the narrowest out: per IP (one address trying many accounts),
per (account, IP) (one address guessing one password), per account (many addresses guessing one
password). An attempt is counted before the password is verified, atomically, so parallel
requests cannot slip past the check; a success clears the (account, IP) counter. An attempt
refused by one limit is not counted by the next, so an address that is locked out does not use
up the account's budget: the owner signing in from elsewhere still gets in.
"""

from __future__ import annotations

from saassy.config import Settings
from saassy.kit.ratelimit import RateLimiter

LOGIN_REFUSED = "Too many sign-in attempts."
MAGIC_LINK_REFUSED = "Too many sign-in links requested."


async def admit_login_attempt(
    limiter: RateLimiter, settings: Settings, *, email: str, ip: str
) -> None:
    """Count a password attempt against every login limit, or raise RateLimited."""
    email = email.lower()
    await limiter.hit(settings.login_limit_per_ip, "login-ip", ip, message=LOGIN_REFUSED)
    await limiter.hit(
        settings.login_limit_per_account_ip, "login-account-ip", email, ip, message=LOGIN_REFUSED
    )
    await limiter.hit(
        settings.login_limit_per_account, "login-account", email, message=LOGIN_REFUSED
    )


async def forget_login_failures(
    limiter: RateLimiter, settings: Settings, *, email: str, ip: str
) -> None:
    """After a successful login, the owner starts afresh from this address."""
    await limiter.clear(settings.login_limit_per_account_ip, "login-account-ip", email.lower(), ip)


async def admit_magic_link_request(
    limiter: RateLimiter, settings: Settings, *, email: str, ip: str
) -> None:
    """Count a magic-link request per IP and per e-mail address, or raise RateLimited."""
    await limiter.hit(settings.login_limit_per_ip, "magic-link-ip", ip, message=MAGIC_LINK_REFUSED)
    await limiter.hit(
        settings.magic_link_limit_per_email,
        "magic-link-email",
        email.lower(),
        message=MAGIC_LINK_REFUSED,
    )
