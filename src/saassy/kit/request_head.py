"""A request head (request line and headers) over 64 KiB is refused with 431 while it is read.

uvicorn's httptools protocol has no limit of its own: it reads a header of any size into memory
and hands it to the app, which answers only then (the h11 protocol has one, but parses slower
and answers 400). This protocol keeps httptools and counts what the head has taken so far: the
bytes of every chunk received while the head is incomplete (memory stays within the limit and
one read), and the exact size of the URL and headers parsed (a head that fits in one read).
Past the limit it answers 431 and closes the connection; no application code runs.

A head must also arrive in time: from the connection's start, or a request's first byte, it has
`HEAD_TIMEOUT_S` to be complete, else 408 and the connection closes. Without it a client that
opens connections and sends half a head holds a file descriptor each, for ever.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 15.0
# ": " and CRLF around each header, as on the wire.
HEADER_FRAMING = 4


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and the protocol answers 431."""


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_s = HEAD_TIMEOUT_S
    _reading_head = False
    _head_bytes = 0  # parsed: URL and headers of the current request
    _pending_bytes = 0  # received while the current head was incomplete
    _too_large = False
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading_head and not self.transport.is_closing():
            self._pending_bytes += len(data)
            if self._pending_bytes > self.max_head_bytes:
                self._too_large = True
                self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = self._pending_bytes = 0
        self._start_head_clock()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + HEADER_FRAMING)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_head_clock()
        super().on_headers_complete()

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _stop_head_clock(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or (self.cycle is not None and not self._reading_head):
            return  # a request is being answered: its own timeouts apply
        message = f"The request line and headers did not arrive within {self.head_timeout_s:g} s."
        self._refuse(408, "request_timeout", message)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._too_large = True
            raise HeadTooLarge  # uvicorn answers a parser error through send_400_response

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        message = f"The request line and headers exceed {self.max_head_bytes} bytes."
        self._refuse(431, "headers_too_large", message)

    def _refuse(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
