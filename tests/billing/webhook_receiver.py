"""A tiny HTTP server that records the webhooks it receives, for tests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    signature: str | None
    payload: bytes


@dataclass
class Receiver:
    url: str
    received: queue.Queue[Delivery] = field(default_factory=queue.Queue)

    def next(self, timeout: float = 10) -> Delivery:
        return self.received.get(timeout=timeout)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    deliveries: queue.Queue[Delivery] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            deliveries.put(Delivery(self.headers.get("Stripe-Signature"), self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", deliveries)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
