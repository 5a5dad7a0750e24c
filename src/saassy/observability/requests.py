"""ASGI middleware around the whole app: each request's id, metrics and (in production) its
access-log line.

The id: a well-formed `X-Request-ID` from the client or the proxy in front is kept, so one id
follows the request across systems; anything else is replaced by a fresh one rather than
logged as sent. It is bound to every log line the request causes and echoed in the answer.

The metrics label a request by the route template the router matched
(`/api/v1/tasks/{task_id}`), never the raw path, which would give every task its own series;
requests no route matched share one label, and unusual methods share `OTHER`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import structlog
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saassy.observability.metrics import UNMATCHED_ROUTE, request_answered

log = structlog.get_logger("saassy.access")

HEADER = b"x-request-id"
WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{8,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER and WELL_FORMED.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RouteTemplates:
    """The full path template of each route of the app. FastAPI leaves the route as declared
    in its router in the scope (`/{task_id}`), without the prefixes it was included under.

    Learnt as requests need them: FastAPI builds an included router's routes at the first
    request that reaches it, and asking for every template at once built all ~270 of them at
    the app's first request (a quarter of a second of CPU, at each start and in each test's
    app). A request's own route is built by then; looking for it builds only the routers
    before it, in the order the router tried them."""

    def __init__(self, app: FastAPI) -> None:
        self.templates: dict[int, list[tuple[re.Pattern[str], str]]] = {}
        self._unseen: Iterator[RouteContext] | None = iter_route_contexts(app.routes)

    def _learn_next(self) -> bool:
        """Record the next route's template; False once every route is known."""
        if self._unseen is None:
            return False
        context = next(self._unseen, None)
        if context is None:
            self._unseen = None
            return False
        if isinstance(template := context.path_format, str):
            pattern = getattr(context, "path_regex", None) or re.compile(".*")
            route = context.original_route
            # A mount (the static files) leaves only its app in the scope, as `endpoint`.
            key = id(route.app) if isinstance(route, Mount) else id(route)
            self.templates.setdefault(key, []).append((pattern, template))
        return True

    def of(self, scope: Scope) -> str:
        """The template of the route that served the request, or the shared unmatched label."""
        served = scope.get("route") or scope.get("endpoint")
        if served is None:
            return UNMATCHED_ROUTE
        path = scope["path"]
        while True:
            candidates = self.templates.get(id(served), [])
            if self._unseen is None:  # every route known
                if len(candidates) == 1:  # a route included once: nearly always
                    return candidates[0][1]
                break
            # Not all known yet: a later inclusion of this route may be the one that served.
            for pattern, template in candidates:
                if pattern.match(path):
                    return template
            self._learn_next()
        return next((t for pattern, t in candidates if pattern.match(path)), UNMATCHED_ROUTE)


class RequestObserver:
    """`access_log`: write one structured line per request (production, where it replaces
    the server's plain-text access log)."""

    def __init__(self, app: ASGIApp, routes: RouteTemplates, *, access_log: bool = False) -> None:
        self.app = app
        self.routes = routes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        echoed = (HEADER, request_id.encode("ascii"))
        status = 500  # what the client gets when the app raises before answering

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, echoed]}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_observed)
            finally:
                seconds = time.perf_counter() - started
                method = scope["method"] if scope["method"] in METHODS else "OTHER"
                route = self.routes.of(scope)
                request_answered(method, route, status, seconds)
                if self.access_log:
                    log.info(
                        "request",
                        method=method,
                        route=route,
                        path=scope["path"],  # never the query string: it can carry tokens
                        status=status,
                        duration_ms=round(seconds * 1000, 2),
                    )


def observe_requests(app: FastAPI, *, access_log: bool) -> None:
    """Wrap the app's whole middleware stack, Starlette's server-error handler included, so a
    500's log line and answer carry the request id too (`add_middleware` would put the
    observer inside that handler)."""
    build = app.build_middleware_stack

    def observed() -> ASGIApp:
        # Built at the first request: every route is in place by then.
        return RequestObserver(build(), RouteTemplates(app), access_log=access_log)

    app.build_middleware_stack = observed  # type: ignore[method-assign]
