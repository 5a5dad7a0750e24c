"""A Stripe-compatible server of our own, for what localstripe lacks; tests only.

It is the one `api_base` the `stripe` SDK is given. It serves Products, Prices, Billing Meters,
meter events and their summaries, Checkout Sessions with a hosted payment page, and Billing
Portal sessions; everything else (customers, subscriptions, invoices, events, payment methods,
`/_config/…`) it forwards verbatim to a localstripe process and relays the answer. `/_double/…`
is for tests: faults, accepted meter events, repeated identifiers with the values they carried,
request counts per path, webhook endpoints and deliveries, paying a session, a flush.

The localstripe behind it is started as `anchored_localstripe`, which honours a subscription's
`billing_cycle_anchor` as Stripe does (anchors.py); the double checks a Checkout Session's.

Stripe's rules it enforces on `POST /v1/billing/meter_events` (all 400 `invalid_request_error`,
the codes Stripe uses, from the SDK's meter error enum and Stripe's API reference):

- `event_name` of no meter: `no_meter`; of an inactive meter only: `archived_meter`.
- no customer in the payload: `meter_event_no_customer_defined`; a customer localstripe does
  not know: `meter_event_customer_not_found`.
- `payload[value]` not a whole number ("only accepts whole number values"; negative ones are
  allowed): `meter_event_invalid_value`; more than 15 significant digits (API 2026-04-22):
  `meter_event_value_too_many_digits`.
- `timestamp` more than 35 days in the past: `timestamp_too_far_in_past`; more than 5 minutes
  in the future: `timestamp_in_future`.
- an `identifier` seen before (Stripe: unique over a rolling 24 h at least; here, for the whole
  life of the process): `duplicate_meter_event`.

Real Stripe may report the customer, meter and value errors asynchronously instead (the
`v1.billing.meter.error_report_triggered` event, same codes); the double refuses them at once.

Every POST under `/v1` honours `Idempotency-Key` as Stripe documents: the first result (500s
included) is saved and replayed, with other parameters it is an `idempotency_error`.
"""
