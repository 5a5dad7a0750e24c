"""Delivers the e-mail outbox: SMTP when configured, else printed to the console."""

from __future__ import annotations

import asyncio

from saassy.kit.context import AppContext


async def run_email_relay(ctx: AppContext) -> None:
    """Placeholder loop; the outbox helper fills it in."""
    while True:
        await ctx.outbox_wakeup.wait()
        ctx.outbox_wakeup.clear()
        await asyncio.sleep(0)
