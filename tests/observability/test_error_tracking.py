"""Error tracking for real: the SDK sends to a Sentry-speaking server on loopback, and what
arrives says what broke without one secret of the request, the process or the settings."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sentry_sdk
import structlog
from fastapi import Request

from saassy import __version__
from saassy.app import create_app
from saassy.config import ConfigError, Settings, load_settings
from saassy.observability.error_tracking import (
    Scrubber,
    report_logged_errors,
    settings_secrets,
    start_error_tracking,
)
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY
from tests.observability.conftest import METRICS_TOKEN

HEADER_SECRET = "header-secret-4f9a1c0e"
COOKIE_SECRET = "cookie-secret-77b2d5aa"
QUERY_SECRET = "query-secret-0c3e9f11"
BODY_SECRET = "body-secret-a81d44e2"
LOCAL_SECRET = "vault-value-5e6f7a8b"


class Envelopes(ThreadingHTTPServer):
    """Records the bodies POSTed to `/api/<project>/envelope/`, decompressed."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.received: list[bytes] = []
        self.arrived = threading.Event()


class _Recorder(BaseHTTPRequestHandler):
    server: Envelopes

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        if self.path.endswith("/envelope/"):
            self.server.received.append(body)
            self.server.arrived.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[Envelopes]:
    server = Envelopes()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: nothing is sent by later tests
    server.shutdown()
    server.server_close()
    thread.join()


async def test_an_unexpected_error_arrives_without_any_secret(
    sentry_server: Envelopes, settings_factory: Callable[..., Settings]
) -> None:
    port = sentry_server.server_address[1]
    settings = settings_factory(
        sentry_dsn=f"http://publickey@127.0.0.1:{port}/1", metrics_token=METRICS_TOKEN
    )
    app = create_app(settings, background=False)

    @app.post("/api/v1/boom/{task_id}")
    async def boom(task_id: str, request: Request) -> None:
        opened = {"API_TOKEN": LOCAL_SECRET}  # noqa: F841 - a local a frame would carry
        await request.json()  # read, so an SDK that keeps bodies would have it
        raise RuntimeError(f"could not reach the database with {TEST_SECRET} for {task_id}")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://saassy.test") as client,
    ):
        response = await client.post(
            "/api/v1/boom/123",
            params={"token": QUERY_SECRET},
            json={"password": BODY_SECRET, "note": BODY_SECRET},
            headers={
                "Authorization": f"Bearer {HEADER_SECRET}",
                "Cookie": f"session={COOKIE_SECRET}",
                "X-Request-ID": "req-0123456789",
            },
        )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)
    assert sentry_server.arrived.wait(10), "no envelope reached the loopback Sentry"
    sent = b"\n".join(sentry_server.received).decode()
    assert "RuntimeError" in sent
    assert '"environment":"test"' in sent.replace(" ", "")
    assert f"saassy@{__version__}" in sent
    assert "/api/v1/boom/123" in sent  # what failed is there
    assert "req-0123456789" in sent  # and the request id, to find its log lines
    for secret in (
        HEADER_SECRET,
        COOKIE_SECRET,
        QUERY_SECRET,
        BODY_SECRET,
        LOCAL_SECRET,
        TEST_SECRET,
        METRICS_TOKEN,
    ):
        assert secret not in sent, secret


def test_a_malformed_dsn_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_SENTRY_DSN", "not a dsn")
    with pytest.raises(ConfigError, match="SAASSY_SENTRY_DSN: not a Sentry DSN"):
        load_settings()


def test_every_secret_of_the_settings_is_scrubbed_and_nothing_else(
    settings_factory: Callable[..., Settings],
) -> None:
    second_key = "c2Vjb25kLXZhdWx0LWtleS0wMTIzNDU2Nzg5YWJjZGU="
    settings = settings_factory(
        vault_keys=f'["{TEST_VAULT_KEY}", "{second_key}"]',
        smtp_url="smtp://mailer:smtp-pass-9d8c7b@smtp.example.com:587",
        redis_url="redis://:redis-pass-1a2b3c@cache.internal:6379/0",
    )
    scrub = Scrubber(settings_secrets(settings)).scrub
    event = {
        "message": f"saassy failed with {second_key} and smtp-pass-9d8c7b at /login?token=abc",
        "extra": {"api_key": "anything", "redis": "redis-pass-1a2b3c", "user": "mailer"},
        "frames": [{"module": "saassy.dispatch.supervisor", "vars": {"secret": TEST_SECRET}}],
    }
    assert scrub(event) == {
        "message": "saassy failed with [redacted] and [redacted] at /login",
        "extra": {"api_key": "[redacted]", "redis": "[redacted]", "user": "mailer"},
        "frames": [{"module": "saassy.dispatch.supervisor", "vars": {"secret": "[redacted]"}}],
    }


async def test_an_error_logged_with_its_exception_is_reported_too(
    sentry_server: Envelopes, settings_factory: Callable[..., Settings]
) -> None:
    port = sentry_server.server_address[1]
    settings = settings_factory(sentry_dsn=f"http://publickey@127.0.0.1:{port}/1")
    assert start_error_tracking(settings)
    logger = structlog.wrap_logger(
        structlog.PrintLogger(io.StringIO()),
        processors=[report_logged_errors, structlog.processors.JSONRenderer()],
    )
    try:
        raise LookupError(f"sandbox gone, key {TEST_SECRET}")
    except LookupError:
        logger.exception("supervisor failed")  # as the supervisor logs a platform fault
    sentry_sdk.flush(timeout=10)
    assert sentry_server.arrived.wait(10), "no envelope reached the loopback Sentry"
    sent = b"\n".join(sentry_server.received).decode()
    assert "LookupError" in sent
    assert TEST_SECRET not in sent
