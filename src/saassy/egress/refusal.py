"""What the proxy answers when it does not connect: one status and one plain-text line."""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus

NOTICE_PREFIX = "saassy egress: "


class Outcome(StrEnum):
    refused = "refused"  # the proxy said no: policy, address, bad request, limits
    failed = "failed"  # allowed, but the destination could not be reached


class Refused(Exception):
    """A request the proxy answers itself; `message` names the destination, never the path."""

    def __init__(self, status: int, message: str, outcome: Outcome = Outcome.refused) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome

    @property
    def notice(self) -> str:
        return NOTICE_PREFIX + self.message

    def reply(self) -> bytes:
        body = (self.notice + "\n").encode()
        head = (
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


CONNECTION_ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
