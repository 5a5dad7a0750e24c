"""The payment-failed and webhook-disabled e-mails go through the preferences."""

from __future__ import annotations

import uuid
from datetime import timedelta

from saassy.billing.notices import notify_payment_failed
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Organization, Role, WebhookEndpoint
from saassy.notifications.kinds import PREFERENCES_PAGE, NotificationKind
from saassy.webhooks.relay import DeliveryPolicy, _disable
from tests.conftest import SignUp
from tests.notifications.support import choose, join, mails_about


async def test_payment_failed_skips_those_who_turned_it_off(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, admin, quiet_admin, member = [await signup() for _ in range(4)]
    await join(ctx, owner.organization_id, admin.user_id, Role.admin)
    await join(ctx, owner.organization_id, quiet_admin.user_id, Role.admin)
    await join(ctx, owner.organization_id, member.user_id, Role.member)
    await choose(ctx, quiet_admin.user_id, NotificationKind.payment_failed, False)
    await choose(ctx, member.user_id, NotificationKind.payment_failed, True)  # still no role
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, uuid.UUID(owner.organization_id))
        assert organization is not None
        await notify_payment_failed(session, ctx.settings, organization, "big")
    mails = await mails_about(ctx, "payment failed")
    assert sorted(m.to for m in mails) == sorted([owner.email.lower(), admin.email.lower()])
    assert "because you are an owner or admin of" in mails[0].body
    assert PREFERENCES_PAGE in mails[0].body


async def test_webhook_disabled_goes_to_owners_who_did_not_turn_it_off(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, quiet_owner, admin = [await signup() for _ in range(3)]
    await join(ctx, owner.organization_id, quiet_owner.user_id, Role.owner)
    await join(ctx, owner.organization_id, admin.user_id, Role.admin)
    await choose(ctx, quiet_owner.user_id, NotificationKind.webhook_disabled, False)
    async with ctx.sessionmaker() as session, session.begin():
        endpoint = WebhookEndpoint(
            organization_id=uuid.UUID(owner.organization_id),
            url="https://example.com/hook",
            description="",
            event_types=[],
            enabled=True,
            secret="sealed",
            failing_since=utcnow() - timedelta(days=6),
        )
        session.add(endpoint)
        await session.flush()
        await _disable(session, ctx.settings, endpoint, DeliveryPolicy(), utcnow())
    [mail] = await mails_about(ctx, "webhook endpoint was disabled")
    assert mail.to == owner.email.lower()
    assert "https://example.com/hook" in mail.body
    assert PREFERENCES_PAGE in mail.body
