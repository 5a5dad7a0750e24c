"""What every `/v1` call meets before its route: the API key, Stripe's idempotency keys,
and the injected faults."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from tests.billing.stripe_double.double import double
from tests.billing.stripe_double.errors import error_response

CallNext = Callable[[Request], Awaitable[Response]]


async def stripe_edge(request: Request, call_next: CallNext) -> Response:
    the = double(request)
    path = request.url.path
    the.state.requests[path] += 1
    if not path.startswith("/v1/"):
        return await call_next(request)
    api_key = _api_key(request)
    if api_key is None:
        return error_response(401, {"type": "invalid_request_error",
                                    "message": "You did not provide a valid API key."})  # fmt: skip
    key = request.headers.get("idempotency-key") if request.method == "POST" else None
    fingerprint = hashlib.sha256(
        request.method.encode() + path.encode() + await request.body()
    ).hexdigest()
    if key is None:
        return await _carry_out(request, call_next, api_key, key, fingerprint)
    if (api_key, key) in the.state.idempotent:
        return _replay(the.state.idempotent[(api_key, key)], fingerprint, key)
    if (api_key, key) in the.state.idempotent_running:
        return error_response(409, {
            "type": "idempotency_error", "code": "idempotency_key_in_use",
            "message": "Another request with this idempotency key is still running.",
        })  # fmt: skip
    the.state.idempotent_running.add((api_key, key))
    try:
        return await _carry_out(request, call_next, api_key, key, fingerprint)
    finally:
        the.state.idempotent_running.discard((api_key, key))


async def _carry_out(
    request: Request, call_next: CallNext, api_key: str, key: str | None, fingerprint: str
) -> Response:
    the = double(request)
    path = request.url.path
    fault = the.faults.draw(path)
    if fault == "rate_limited":
        return error_response(429, {
            "type": "invalid_request_error", "code": "rate_limit",
            "message": "Request rate limit exceeded (injected).",
        })  # fmt: skip
    if fault == "internal_error":
        response = _internal_error()
        response.headers["Stripe-Should-Retry"] = "false"  # the key now replays this 500
        status, content = 500, bytes(response.body)
    else:
        answered = await call_next(request)
        content = b"".join([chunk async for chunk in answered.body_iterator])  # type: ignore[attr-defined]
        status = answered.status_code
        response = Response(content, status, headers=dict(answered.headers))
    if key is not None and _saved_by_stripe(status, content):
        the.state.idempotent[(api_key, key)] = (fingerprint, status, content)
    if fault == "lost_answer":
        return _internal_error()  # done, and saved under the key; only the answer is lost
    return response


def _api_key(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        credentials = base64.b64decode(credentials).decode().split(":")[0]
    elif scheme != "Bearer":
        return None
    return credentials if credentials.startswith("sk_") else None


def _replay(saved: tuple[str, int, bytes], fingerprint: str, key: str) -> Response:
    original, status, content = saved
    if original != fingerprint:
        return error_response(400, {
            "type": "idempotency_error",
            "message": f"Keys for idempotent requests can only be used with the same parameters "
                       f"they were first used with. Try using a key other than '{key}'.",
        })  # fmt: skip
    return Response(content, status, media_type="application/json",
                    headers={"Idempotent-Replayed": "true"})  # fmt: skip


def _saved_by_stripe(status: int, content: bytes) -> bool:
    """Stripe saves a result once the endpoint began to run: not a refused parameter, nor a 429."""
    if status in (401, 429):
        return False
    if status == 400:
        code = json.loads(content or b"{}").get("error", {}).get("code") or ""
        return not code.startswith("parameter_")
    return True


def _internal_error() -> Response:
    return error_response(500, {"type": "api_error",
                                "message": "An unknown error occurred (injected)."})  # fmt: skip
