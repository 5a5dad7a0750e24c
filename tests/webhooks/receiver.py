"""A webhook receiver on loopback, and Standard Webhooks verification written from the spec.

The verification here shares no code with the app's signing: the spec's algorithm, by hand.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 5 * 60


class VerificationFailed(AssertionError):
    pass


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The spec: HMAC-SHA256 keyed with the base64-decoded secret (after `whsec_`), over
    `{webhook-id}.{webhook-timestamp}.{body}`, compared with every `v1,` signature given."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        raise VerificationFailed("timestamp outside the tolerance")
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            parsed: dict[str, Any] = json.loads(body)
            return parsed
    raise VerificationFailed("no signature matches")


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """Answers `failures` requests with 500, then 204 (or `status` for every request).

    A slow one: with `hold`, each request is recorded, then answered only once `hold` is set;
    with `trickle`, the answer's head goes at once and its body a byte at a time until `hold`
    is set. `answer` is the body of a 2xx answer, sent with `answer_headers`.
    """

    def __init__(
        self,
        failures: int = 0,
        status: int = 204,
        *,
        hold: threading.Event | None = None,
        trickle: bool = False,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.failures = failures
        self.status = status
        self.hold = hold
        self.trickle = trickle
        self.body = body
        self.headers = headers or {}
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.port = 0

    def received(self) -> int:
        with self.lock:
            return len(self.requests)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?source=saassy"

    def succeeded(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.answered < 300]

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            failing = len(self.requests) < self.failures
            status = 500 if failing else self.status
            self.requests.append(Received(headers, body, status))
        return status


@contextmanager
def running(receiver: Receiver, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.answer(headers, body)
            if receiver.trickle:
                self.send_response(200)
                self.send_header("content-length", "1000000")
                self.end_headers()
                with contextlib.suppress(OSError):  # the relay hung up: it gave up
                    while receiver.hold is not None and not receiver.hold.wait(0.05):
                        self.wfile.write(b".")
                        self.wfile.flush()
                return
            if receiver.hold is not None:
                receiver.hold.wait()
            payload = b"not today" if status >= 300 else receiver.body
            self.send_response(status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
