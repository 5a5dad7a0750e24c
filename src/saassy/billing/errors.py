"""Billing's errors (rendered by kit/handlers.py like every other).

BillingDisabled           409  billing_disabled (no SAASSY_STRIPE_SECRET_KEY: plans are
                               assigned by staff)
BillingNotSynced          409  billing_not_synced (the plan has no Stripe Price yet)
  StripeObjectMissing     409  billing_not_synced (Stripe has no such price or customer: the
                               stored ids are of another Stripe account or mode)
SubscriptionExists        409  use_billing_portal (plan changes go through the portal)
SubscriptionPending       409  subscription_pending (Stripe has a subscription whose webhook
                               has not arrived yet, e.g. a checkout just paid)
NoBillingAccount          409  no_billing_account (no Stripe Customer yet)
PlanNotPurchasable        422  plan_not_purchasable (unknown, free or custom-priced plan)
InvalidSignature          400  invalid_signature (a webhook not signed by Stripe)
StripeUnavailable         503  stripe_unavailable (Stripe refused or was out of reach)
"""

from __future__ import annotations

from saassy.kit.errors import BadRequest, Conflict, ServiceUnavailable, ValidationFailed


class BillingDisabled(Conflict):
    code = "billing_disabled"

    def __init__(self) -> None:
        super().__init__(
            "Billing is not enabled on this server: plans are assigned by staff "
            "(the operator sets SAASSY_STRIPE_SECRET_KEY to sell them)."
        )


class BillingNotSynced(Conflict):
    code = "billing_not_synced"

    def __init__(self, plan: str) -> None:
        super().__init__(
            f"The {plan} plan has no Stripe price yet; the operator runs `saassy billing sync`.",
            field="plan",
        )


class StripeObjectMissing(BillingNotSynced):
    def __init__(self, what: str) -> None:
        Conflict.__init__(
            self,
            f"Stripe has no {what} this server stored: its Stripe key is of another account "
            "or mode than the one billing was set up with; the operator runs "
            "`saassy billing sync`, which says what to do.",
        )


class SubscriptionExists(Conflict):
    code = "use_billing_portal"

    def __init__(self, plan: str) -> None:
        super().__init__(
            f"This organization already subscribes to the {plan} plan; change or cancel it in "
            "the billing portal (POST /api/v1/billing/portal).",
            details={"plan": plan, "portal": "/api/v1/billing/portal"},
        )


class SubscriptionPending(Conflict):
    code = "subscription_pending"

    def __init__(self) -> None:
        super().__init__(
            "This organization already has a subscription in Stripe (a checkout was just "
            "paid): its plan applies as soon as Stripe confirms it; change plans in the "
            "billing portal (POST /api/v1/billing/portal).",
            details={"portal": "/api/v1/billing/portal"},
        )


class NoBillingAccount(Conflict):
    code = "no_billing_account"

    def __init__(self) -> None:
        super().__init__(
            "This organization has no billing account yet: subscribe to a plan first "
            "(POST /api/v1/billing/checkout)."
        )


class PlanNotPurchasable(ValidationFailed):
    code = "plan_not_purchasable"

    def __init__(self, plan: str, purchasable: list[str]) -> None:
        known = ", ".join(purchasable) or "none"
        super().__init__(
            f"plan: {plan!r} is not a plan sold through checkout (those are: {known}).",
            field="plan",
            details={"purchasable": purchasable},
        )


class InvalidSignature(BadRequest):
    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__(
            "The Stripe-Signature header is missing or does not match this endpoint's secret.",
            field="Stripe-Signature",
        )


class StripeUnavailable(ServiceUnavailable):
    code = "stripe_unavailable"

    def __init__(self) -> None:
        super().__init__("Stripe did not answer as expected; try again in a moment.")
