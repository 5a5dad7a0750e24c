"""Billing's SQL: customers, subscriptions, processed events, catalog objects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from saassy.kit.repository import RepositoryBase
from saassy.models import Membership, Organization, Role, User
from saassy.models.billing import (
    BillingCustomer,
    BillingSubscription,
    StripeCatalogObject,
    StripeEvent,
)


class CustomerRepository(RepositoryBase[BillingCustomer]):
    model = BillingCustomer

    async def of_organization(self, organization_id: uuid.UUID) -> BillingCustomer | None:
        return await self.one_or_none(
            self.select().where(BillingCustomer.organization_id == organization_id)
        )

    async def by_stripe_id(self, stripe_customer_id: str) -> BillingCustomer | None:
        return await self.one_or_none(
            self.select().where(BillingCustomer.stripe_customer_id == stripe_customer_id)
        )

    async def any(self) -> bool:
        """Whether any organization has a Stripe customer (something was sold here)."""
        found = await self.session.scalar(select(BillingCustomer.id).limit(1))
        return found is not None


class SubscriptionRepository(RepositoryBase[BillingSubscription]):
    model = BillingSubscription

    async def organization_for_update(self, organization_id: uuid.UUID) -> Organization | None:
        """The live organization, locked (PostgreSQL) while its plan is decided."""
        statement = (
            select(Organization)
            .where(Organization.id == organization_id, Organization.deleted_at.is_(None))
            .with_for_update()
        )
        found: Organization | None = (await self.session.execute(statement)).scalars().one_or_none()
        return found

    async def billing_contacts(self, organization_id: uuid.UUID) -> list[str]:
        """The e-mail addresses of the organization's owners and admins whose accounts are
        not disabled (every billing notice goes to these)."""
        rows = await self.session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organization_id == organization_id,
                Membership.role.in_([Role.owner, Role.admin]),
                User.disabled_at.is_(None),
            )
            .order_by(User.email)
        )
        return list(rows)

    async def of_organization(self, organization_id: uuid.UUID) -> BillingSubscription | None:
        return await self.one_or_none(
            self.select().where(BillingSubscription.organization_id == organization_id)
        )

    async def by_stripe_id(self, stripe_subscription_id: str) -> BillingSubscription | None:
        return await self.one_or_none(
            self.select().where(
                BillingSubscription.stripe_subscription_id == stripe_subscription_id
            )
        )

    async def past_due_since_before(self, cutoff: datetime) -> Sequence[BillingSubscription]:
        return await self.all(
            self.select().where(
                BillingSubscription.status == "past_due",
                BillingSubscription.past_due_since <= cutoff,
            )
        )


class EventRepository(RepositoryBase[StripeEvent]):
    model = StripeEvent

    async def seen(self, stripe_event_id: str) -> bool:
        found = await self.session.scalar(
            select(StripeEvent.id).where(StripeEvent.stripe_event_id == stripe_event_id)
        )
        return found is not None

    async def count_of_type(self, event_type: str) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(StripeEvent).where(StripeEvent.type == event_type)
        )
        return count or 0


class CatalogObjectRepository(RepositoryBase[StripeCatalogObject]):
    model = StripeCatalogObject

    async def every(self) -> Sequence[StripeCatalogObject]:
        return await self.all(self.select().order_by(StripeCatalogObject.created_at))

    async def forget_all(self) -> None:
        """Every stored id (they were of another Stripe account or mode)."""
        await self.session.execute(delete(StripeCatalogObject))

    async def active_price(self, key: str) -> StripeCatalogObject | None:
        return await self.one_or_none(
            self.select().where(
                StripeCatalogObject.kind == "price",
                StripeCatalogObject.key == key,
                StripeCatalogObject.active.is_(True),
            )
        )

    async def price_by_stripe_id(self, stripe_id: str) -> StripeCatalogObject | None:
        return await self.one_or_none(
            self.select().where(
                StripeCatalogObject.kind == "price", StripeCatalogObject.stripe_id == stripe_id
            )
        )
