"""`saassy billing sync`: the catalog's paid plans and the meters, made in Stripe.

Per paid plan (a monthly price above zero; free and custom-priced plans get nothing): a
Product (id `saassy_<plan>`), its flat monthly Price (lookup key `saassy_<plan>_month`), and a
metered Price on each Billing Meter the plan has an overage price for. The two meters of
meters.py are shared by every plan.

Stripe's ids live in `StripeCatalogObject` with a fingerprint of what Stripe will not change
on an object: an unchanged catalog writes nothing and reads one object; a changed amount makes
a new Price and archives the old one (Prices are immutable); a plan gone from the catalog has
its Product and Prices archived. Creates carry idempotency keys derived from the key and the
fingerprint, so a run that dies between Stripe's answer and the commit makes nothing twice when
run again.

The stored ids are Stripe's only in the account and mode (test or live) that made them: each
run first reads one of them back. Missing there, with no customer sold to yet in this
database, the rows are forgotten and the catalog made afresh; with customers, the database
belongs to that other account and the run refuses (`CatalogOfAnotherAccount`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import stripe
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params import PriceCreateParamsRecurring, ProductCreateParams, ProductUpdateParams

from saassy.billing.keys import (
    MONTH,
    lookup_key,
    meter_key,
    metered_price_key,
    monthly_price_key,
    product_key,
)
from saassy.billing.meters import (
    CUSTOMER_KEY,
    EVENT_UNITS_PER_UNIT,
    METERS,
    VALUE_KEY,
    MeterKey,
    meter_create_params,
)
from saassy.billing.repository import CatalogObjectRepository, CustomerRepository
from saassy.models.billing import StripeCatalogObject
from saassy.plans.catalog import Catalog, Plan

CURRENCY = "usd"


class Action(StrEnum):
    created = "created"
    updated = "updated"
    reactivated = "reactivated"
    archived = "archived"
    unchanged = "unchanged"


@dataclass(frozen=True)
class SyncLine:
    kind: str
    key: str
    action: Action
    stripe_id: str


def fingerprint(fields: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def cents(usd: Decimal) -> str:
    """A USD amount as Stripe's `unit_amount_decimal` (cents, up to 12 decimal places)."""
    return format((usd * 100).normalize(), "f")


def paid(plan: Plan) -> bool:
    return plan.price_usd_month is not None and plan.price_usd_month > 0


def overage_prices(plan: Plan) -> dict[MeterKey, Decimal]:
    prices = {
        MeterKey.tasks: plan.overage_usd_per_task,
        MeterKey.compute_units: plan.overage_usd_per_compute_unit,
    }
    return {meter: usd for meter, usd in prices.items() if usd is not None}


@dataclass(frozen=True)
class SyncResult:
    lines: list[SyncLine]
    # The stored ids were of another Stripe account or mode, and were made afresh here.
    replaced: bool = False


class CatalogOfAnotherAccount(Exception):
    """Stripe lacks the stored objects and this database already has customers in Stripe."""

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"Stripe has no {missing}: this database's Stripe objects and customers belong to "
            "another Stripe account or mode (test or live). A database stays with one account "
            "and mode: point SAASSY_STRIPE_SECRET_KEY (and SAASSY_STRIPE_API_BASE) back at it, "
            "or start live on a fresh database."
        )


def _probe_order(row: StripeCatalogObject) -> int:
    # Prices and meters have ids Stripe made; a product's (`saassy_<plan>`) may exist in any
    # account that ever ran a sync, so it is read back only when nothing else is stored.
    return {"price": 0, "meter": 1}.get(row.kind, 2)


class CatalogSync:
    def __init__(self, session: AsyncSession, client: stripe.StripeClient) -> None:
        self.session = session
        self.client = client
        self.rows = CatalogObjectRepository(session)
        self.lines: list[SyncLine] = []

    async def run(self, catalog: Catalog) -> SyncResult:
        existing = list(await self.rows.every())
        replaced = False
        if await self._stored_missing(existing):
            await self.rows.forget_all()
            existing, replaced = [], True
        meters = {meter: await self._meter(meter, existing) for meter in METERS}
        wanted: set[str] = set(map(meter_key, METERS))
        for plan in catalog.plans.values():
            if not paid(plan):
                continue
            product = await self._product(plan, existing)
            wanted.add(product_key(plan.key))
            assert plan.price_usd_month is not None
            await self._price(
                monthly_price_key(plan.key),
                existing,
                product,
                lookup_key(plan.key, MONTH),
                {"unit_amount_decimal": cents(plan.price_usd_month), "usage_type": "licensed"},
            )
            wanted.add(monthly_price_key(plan.key))
            for meter, usd in overage_prices(plan).items():
                key = metered_price_key(plan.key, meter)
                await self._price(
                    key,
                    existing,
                    product,
                    lookup_key(plan.key, meter.value),
                    {
                        # Per unit the meter counts in (compute units go in thousandths).
                        "unit_amount_decimal": cents(usd / EVENT_UNITS_PER_UNIT[meter]),
                        "usage_type": "metered",
                        "meter": meters[meter],
                    },
                )
                wanted.add(key)
        for row in existing:
            if row.active and row.key not in wanted:
                await self._archive(row)
        await self.session.flush()
        return SyncResult(self.lines, replaced)

    async def _stored_missing(self, existing: list[StripeCatalogObject]) -> bool:
        """Whether Stripe lacks one stored active object (one read): True when they can be
        made afresh, CatalogOfAnotherAccount when customers were already made here."""
        stored = sorted((r for r in existing if r.active), key=_probe_order)
        if not stored:
            return False
        row = stored[0]
        try:
            if row.kind == "price":
                await self.client.v1.prices.retrieve_async(row.stripe_id)
            elif row.kind == "meter":
                await self.client.v1.billing.meters.retrieve_async(row.stripe_id)
            else:
                await self.client.v1.products.retrieve_async(row.stripe_id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing" and exc.http_status != 404:
                raise
        else:
            return False
        if await CustomerRepository(self.session).any():
            raise CatalogOfAnotherAccount(f"{row.kind} {row.stripe_id} ({row.key})")
        return True

    def _note(self, row: StripeCatalogObject, action: Action) -> None:
        self.lines.append(SyncLine(row.kind, row.key, action, row.stripe_id))

    async def _meter(self, meter: MeterKey, existing: list[StripeCatalogObject]) -> str:
        definition = METERS[meter]
        key = meter_key(meter)
        fields = {
            "event_name": definition.event_name,
            "display_name": definition.display_name,
            "aggregation": "sum",
            "customer": CUSTOMER_KEY,
            "value": VALUE_KEY,
        }
        row = next((r for r in existing if r.kind == "meter" and r.key == key), None)
        if row is not None:
            self._note(row, Action.unchanged)
            return row.stripe_id
        # The event name is unique in the account: a meter made before this database knew it
        # (another environment, a lost database) is adopted rather than refused.
        found = None
        listed = await self.client.v1.billing.meters.list_async({"limit": 100})
        async for candidate in listed.auto_paging_iter():
            if candidate.event_name == definition.event_name:
                found = candidate
                break
        if found is None:
            found = await self.client.v1.billing.meters.create_async(
                meter_create_params(definition), {"idempotency_key": f"saassy-{key}"}
            )
        row = StripeCatalogObject(
            kind="meter", key=key, fingerprint=fingerprint(fields), stripe_id=found.id
        )
        await self.rows.add(row)
        existing.append(row)
        self._note(row, Action.created)
        return row.stripe_id

    async def _product(self, plan: Plan, existing: list[StripeCatalogObject]) -> str:
        key = product_key(plan.key)
        print_ = fingerprint({"name": plan.name, "description": plan.description})
        row = next((r for r in existing if r.kind == "product" and r.key == key), None)
        described: ProductUpdateParams = {"name": plan.name, "active": True}
        if plan.description:
            described["description"] = plan.description
        if row is None:
            product_id = f"saassy_{plan.key}"
            try:
                created: ProductCreateParams = {
                    "id": product_id,
                    "name": plan.name,
                    "metadata": {"saassy_plan": plan.key},
                }
                if plan.description:
                    created["description"] = plan.description
                product = await self.client.v1.products.create_async(created)
            except stripe.InvalidRequestError as exc:
                if exc.code != "resource_already_exists":
                    raise
                product = await self.client.v1.products.update_async(product_id, described)
            row = StripeCatalogObject(
                kind="product", key=key, fingerprint=print_, stripe_id=product.id
            )
            await self.rows.add(row)
            existing.append(row)
            self._note(row, Action.created)
        elif row.fingerprint != print_ or not row.active:
            await self.client.v1.products.update_async(row.stripe_id, described)
            action = Action.updated if row.active else Action.reactivated
            row.fingerprint, row.active = print_, True
            self._note(row, action)
        else:
            self._note(row, Action.unchanged)
        return row.stripe_id

    async def _price(
        self,
        key: str,
        existing: list[StripeCatalogObject],
        product: str,
        lookup: str,
        terms: dict[str, str],
    ) -> None:
        print_ = fingerprint({"product": product, "currency": CURRENCY, "interval": MONTH, **terms})
        rows = [r for r in existing if r.kind == "price" and r.key == key]
        same = next((r for r in rows if r.fingerprint == print_), None)
        if same is not None and same.active:
            self._note(same, Action.unchanged)
        elif same is not None:
            await self.client.v1.prices.update_async(
                same.stripe_id,
                {"active": True, "lookup_key": lookup, "transfer_lookup_key": True},
            )
            same.active = True
            self._note(same, Action.reactivated)
        else:
            recurring: PriceCreateParamsRecurring = {
                "interval": MONTH,
                "usage_type": "metered" if terms["usage_type"] == "metered" else "licensed",
            }
            if "meter" in terms:
                recurring["meter"] = terms["meter"]
            price = await self.client.v1.prices.create_async(
                {
                    "product": product,
                    "currency": CURRENCY,
                    "unit_amount_decimal": Decimal(terms["unit_amount_decimal"]),
                    "recurring": recurring,
                    "lookup_key": lookup,
                    "transfer_lookup_key": True,
                    "metadata": {"saassy_key": key},
                },
                {"idempotency_key": f"saassy-{key}-{print_[:32]}"},
            )
            same = StripeCatalogObject(
                kind="price", key=key, fingerprint=print_, stripe_id=price.id
            )
            await self.rows.add(same)
            existing.append(same)
            self._note(same, Action.created)
        for row in rows:
            if row is not same and row.active:
                await self._archive(row)

    async def _archive(self, row: StripeCatalogObject) -> None:
        if row.kind == "price":
            await self.client.v1.prices.update_async(row.stripe_id, {"active": False})
        elif row.kind == "product":
            await self.client.v1.products.update_async(row.stripe_id, {"active": False})
        else:  # a meter stays: usage already reported to it must still be invoiced
            return
        row.active = False
        self._note(row, Action.archived)


async def sync_catalog(
    session: AsyncSession, client: stripe.StripeClient, catalog: Catalog
) -> SyncResult:
    """Make Stripe's products, prices and meters match the catalog; what was done to each."""
    return await CatalogSync(session, client).run(catalog)
