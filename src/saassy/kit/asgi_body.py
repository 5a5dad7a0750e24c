"""Reading an ASGI request's body whole before the app does, and handing it to the app after.

Kept in one buffer, not as the messages it came in: a body sent a byte at a time would
otherwise cost a message object (~200 bytes) for every byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Receive


@dataclass(frozen=True)
class ReadBody:
    body: bytes
    ended_by: Message | None = None  # what came instead of the rest (a disconnect)
    too_large: bool = False  # more than the limit came: read no further


async def read_body(receive: Receive, limit: int | None = None) -> ReadBody:
    """The body until its last part, a message that is not a part, or past `limit` bytes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return ReadBody(bytes(body), ended_by=message)
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            return ReadBody(b"", too_large=True)
        if not message.get("more_body", False):
            return ReadBody(bytes(body))


def replay(read: ReadBody, receive: Receive) -> Receive:
    """`receive` for the app: the body as one part (what came of it, if it was cut short), then
    the message that cut it, then whatever comes next."""
    pending: list[Message] = [
        {"type": "http.request", "body": read.body, "more_body": read.ended_by is not None}
    ]
    if read.ended_by is not None:
        pending.append(read.ended_by)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
