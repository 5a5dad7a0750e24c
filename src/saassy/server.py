"""How every Saassy server process is served: uvicorn with a bounded request head.

`saassy dev`, `saassy api` and the benchmarks all serve through here, so what protects one
protects all: a head over 64 KiB is refused before any application code runs (431), and
uvicorn believes no `X-Forwarded-*` header itself: the app does, from the proxies the operator
names (`SAASSY_TRUSTED_PROXIES`), whatever server runs it.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from saassy.kit.heap import freeze_start_up
from saassy.kit.request_head import BoundedHeadProtocol


def log_config(*, json: bool = False) -> dict[str, Any]:
    """uvicorn's own logging, its access log without query strings (they can hold tokens);
    `json`: its lines as JSON, like the app's (production)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["without_query_strings"] = {
        "()": "saassy.kit.logging.WithoutQueryStrings"
    }
    config["handlers"]["access"]["filters"] = ["without_query_strings"]
    if json:
        formatter = {"()": "saassy.kit.logging.json_formatter"}
        config["formatters"] = {"default": formatter, "access": formatter}
    return config


def server_options(*, json_logs: bool = False) -> dict[str, Any]:
    """uvicorn's options for a Saassy server (its host, port and app come on top). With
    `json_logs` (production) its access log is off: the app writes one JSON line per request,
    with the request's id (observability/requests.py)."""
    return {
        "http": BoundedHeadProtocol,
        "proxy_headers": False,
        "server_header": False,
        "log_config": log_config(json=json_logs),
        "access_log": not json_logs,
    }


def serve(
    app: FastAPI | str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    json_logs: bool = False,
    **extra: Any,
) -> None:
    """Serve `app` (or the import string of an app factory, for several workers) until stopped;
    `extra` uvicorn options win over ours (the benchmark's server turns its access log off).
    An app is built by now: its start-up heap is frozen here (kit/heap.py); a factory, which
    each worker calls, freezes its own (`saassy.app:create_served_app`)."""
    if not isinstance(app, str):
        freeze_start_up()
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        **(server_options(json_logs=json_logs) | extra),
    )
