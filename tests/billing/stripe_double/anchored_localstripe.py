"""localstripe, honouring `billing_cycle_anchor` on a new subscription as Stripe does.

localstripe 1.15 takes the parameter and keeps it, but its periods run one interval from the
start whatever it says, and its first invoice charges the whole price. Run in its place
(`python -m tests.billing.stripe_double.anchored_localstripe --port P --from-scratch`), it
refuses an anchor Stripe refuses (in Stripe's error shape), ends the first period at the anchor
and prorates the first invoice (anchors.py); a subscription without an anchor is untouched.

localstripe's own `server.start()` listens on every interface and keeps its objects in one
shared /tmp/localstripe.pickle; this one listens on 127.0.0.1 only and keeps them in a file of
its own (`--store`, by default in a temporary directory removed when it stops), so two runs side
by side never read each other's objects.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

from tests.billing.stripe_double import anchors

_create_subscription = resources.Subscription.__init__
_period_of_item = resources.SubscriptionItem._current_period
_create_line = resources.InvoiceLineItem.__init__


def _subscription(
    self: Any,
    *args: Any,
    billing_cycle_anchor: Any = None,
    proration_behavior: Any = None,
    **kwargs: Any,
) -> None:
    if billing_cycle_anchor is not None:
        anchor = _anchor(billing_cycle_anchor, kwargs)
        behavior = proration_behavior or "create_prorations"
        if behavior not in anchors.PRORATION_BEHAVIORS:
            raise _refused("proration_behavior", f"Invalid proration_behavior: {behavior}")
        # localstripe keeps no proration_behavior; a private attribute is never exported
        self._proration_behavior = behavior
        billing_cycle_anchor = anchor
    _create_subscription(self, *args, billing_cycle_anchor=billing_cycle_anchor, **kwargs)


def _anchor(raw: Any, kwargs: dict[str, Any]) -> int:
    try:
        anchor = int(raw)
    except (TypeError, ValueError):
        raise _refused("billing_cycle_anchor", f"Invalid integer: {raw}") from None
    items = kwargs.get("items") or [{"plan": kwargs.get("plan")}]
    plan = resources.Plan._api_retrieve(items[0].get("plan") or items[0].get("price"))
    why = anchors.refusal(anchor, int(time.time()), plan.interval, plan.interval_count)
    if why is not None:
        raise _refused("billing_cycle_anchor", why)
    return anchor


def _refused(param: str, message: str) -> UserError:
    return UserError(400, message, {"param": param})


def _anchored(subscription_id: str | None) -> Any:
    """The item's subscription when its first period ends at an anchor, else None."""
    if subscription_id is None:
        return None
    subscription = resources.Subscription._api_retrieve(subscription_id)
    anchor = subscription.billing_cycle_anchor
    return subscription if anchor is not None and anchor > subscription.start_date else None


def _item_period(self: Any) -> dict[str, int]:
    subscription = _anchored(self._subscription)
    if subscription is None:
        return _period_of_item(self)  # type: ignore[no-any-return]
    start, end = anchors.current_period(
        subscription.start_date, subscription.billing_cycle_anchor,
        self.plan.interval, self.plan.interval_count, int(time.time()),
    )  # fmt: skip
    return {"start": start, "end": end}


def _line(self: Any, item: Any) -> None:
    _create_line(self, item)
    if self.type != "subscription":
        return
    subscription = _anchored(item._subscription)
    first = subscription is not None and self.period == {
        "start": subscription.start_date, "end": subscription.billing_cycle_anchor,
    }  # fmt: skip
    if not first:
        return
    if getattr(subscription, "_proration_behavior", "create_prorations") == "none":
        self.amount = 0
        return
    self.proration = True
    self.amount = anchors.prorated(
        self.amount, subscription.start_date, subscription.billing_cycle_anchor,
        item.plan.interval, item.plan.interval_count,
    )  # fmt: skip


def install() -> None:
    resources.Subscription.__init__ = _subscription
    resources.SubscriptionItem._current_period = _item_period
    resources.InvoiceLineItem.__init__ = _line


def keep_store_in(path: Path) -> None:
    """localstripe's store saved to and loaded from `path` (its own code names one shared file)."""

    def load(self: resources.Store) -> None:
        try:
            with path.open("rb") as file:
                old = pickle.load(file)  # noqa: S301 - the file this process itself wrote
        except FileNotFoundError:
            return
        self.clear()
        self.update(old)

    def dump(self: resources.Store) -> None:
        with path.open("wb") as file:
            pickle.dump(self, file, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def main() -> None:
    parser = argparse.ArgumentParser(prog="anchored_localstripe")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true", help="ignore a saved --store")
    parser.add_argument(
        "--store", type=Path, default=None,
        help="where the objects are saved (default: a temporary directory, removed at exit)",
    )  # fmt: skip
    args = parser.parse_args()
    scratch = None
    if args.store is None:
        scratch = Path(tempfile.mkdtemp(prefix="localstripe-"))
        args.store = scratch / "localstripe.pickle"
    try:
        install()
        keep_store_in(args.store)
        if not args.from_scratch:
            resources.store.try_load_from_disk()
        access = logging.getLogger("aiohttp.access")
        access.setLevel(logging.DEBUG)
        access.addHandler(logging.StreamHandler())
        web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=access)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
