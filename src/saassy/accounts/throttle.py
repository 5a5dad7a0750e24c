"""Limits on password guessing and on magic-link requests.

A login attempt from a device that signed in to the account before (a valid device cookie, see
devices.py) is counted only against that device's budget: guesses from elsewhere cannot lock
the owner out of it, and a stolen cookie still buys only a few guesses. Every other attempt
meets three limits, checked from the narrowest out: per IP (one address trying many accounts),
per (account, IP) (one address guessing one password), per account (many addresses guessing one
password). An attempt is counted before the password is verified, atomically, so parallel
requests cannot slip past the check; a success clears the counter of that address (or device).
An attempt refused by one limit is not counted by the next, so an address that is locked out
does not use up the account's budget. Once the account's budget is used up, a client without a
device cookie gets 429 until its window frees a slot (Retry-After says when).
"""

from __future__ import annotations

from saassy.config import Settings
from saassy.kit.ratelimit import RateLimiter

LOGIN_REFUSED = "Too many sign-in attempts."
MAGIC_LINK_REFUSED = "Too many sign-in links requested."
EMAIL_REFUSED = "Too many e-mails requested; wait a while and try again."


async def admit_login_attempt(
    limiter: RateLimiter, settings: Settings, *, email: str, ip: str, device: str | None
) -> None:
    """Count a password attempt against the device's limit, or every other login limit;
    raise RateLimited when over one."""
    if device is not None:
        await limiter.hit(
            settings.login_limit_per_device, "login-device", device, message=LOGIN_REFUSED
        )
        return
    email = email.lower()
    await limiter.hit(settings.login_limit_per_ip, "login-ip", ip, message=LOGIN_REFUSED)
    await limiter.hit(
        settings.login_limit_per_account_ip, "login-account-ip", email, ip, message=LOGIN_REFUSED
    )
    await limiter.hit(
        settings.login_limit_per_account, "login-account", email, message=LOGIN_REFUSED
    )


async def forget_login_failures(
    limiter: RateLimiter, settings: Settings, *, email: str, ip: str, device: str | None
) -> None:
    """After a successful login, the owner starts afresh from this device or address."""
    if device is not None:
        await limiter.clear(settings.login_limit_per_device, "login-device", device)
        return
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


async def admit_email_request(
    limiter: RateLimiter, settings: Settings, *, kind: str, email: str, ip: str
) -> None:
    """Count a request for a password-reset or verification e-mail per IP and per address (the
    magic links' limits, counted apart), or raise RateLimited."""
    await limiter.hit(settings.login_limit_per_ip, f"{kind}-ip", ip, message=EMAIL_REFUSED)
    await limiter.hit(
        settings.magic_link_limit_per_email, f"{kind}-email", email.lower(), message=EMAIL_REFUSED
    )
