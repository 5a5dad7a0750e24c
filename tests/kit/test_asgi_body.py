"""A body read whole before the app, in one buffer, then handed on (kit/asgi_body.py)."""

from __future__ import annotations

from starlette.types import Message, Receive

from saassy.kit.asgi_body import ReadBody, read_body, replay


def receiving(*messages: Message) -> tuple[list[Message], Receive]:
    left = list(messages)

    async def receive() -> Message:
        return left.pop(0)

    return left, receive


def part(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_sent_a_byte_at_a_time_reaches_the_app_as_one_part() -> None:
    left, receive = receiving(*(part(bytes([b])) for b in b"hello"), part(b"", more=False))
    read = await read_body(receive)
    assert read == ReadBody(b"hello")
    assert left == []
    again = replay(read, receive)
    assert await again() == part(b"hello", more=False)


async def test_a_body_cut_short_is_handed_on_with_what_cut_it() -> None:
    gone: Message = {"type": "http.disconnect"}
    _, receive = receiving(part(b"ha"), part(b"lf"), gone)
    read = await read_body(receive)
    assert read == ReadBody(b"half", ended_by=gone)
    again = replay(read, receive)
    assert [await again(), await again()] == [part(b"half"), gone]


async def test_past_the_limit_it_stops_reading() -> None:
    left, receive = receiving(part(b"1234"), part(b"5678"), part(b"9", more=False))
    read = await read_body(receive, limit=6)
    assert read.too_large
    assert left == [part(b"9", more=False)]
