"""Write requests take turns (kit/write_turns.py): at most N in the app, bodies first, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from saassy.app import create_app
from saassy.config import Settings
from saassy.kit import write_turns
from saassy.kit.write_turns import WriteTurns


class Recorder:
    """An app that notes when each request came in and went out, and the body it read; a
    request holds on until its `release` event is set."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.bodies: dict[str, bytes] = {}
        self.release: dict[str, asyncio.Event] = {}
        self._entered: dict[str, asyncio.Event] = {}

    def let_go(self, name: str) -> None:
        self.release.setdefault(name, asyncio.Event()).set()

    async def entered(self, name: str) -> None:
        async with asyncio.timeout(5):
            await self._entered.setdefault(name, asyncio.Event()).wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].strip("/")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies[name] = body
        self.log.append(f"in {name}")
        self._entered.setdefault(name, asyncio.Event()).set()
        async with asyncio.timeout(5):  # a test that failed ends, not hangs
            await self.release.setdefault(name, asyncio.Event()).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        self.log.append(f"out {name}")


def request(method: str, name: str) -> Scope:
    return {"type": "http", "method": method, "path": f"/{name}", "headers": []}


def body_of(*chunks: bytes, more: bool = False) -> tuple[Receive, Callable[[bytes, bool], None]]:
    """A receive that hands out `chunks` (the last one saying more comes when `more`), then what
    the returned function feeds it."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for n, chunk in enumerate(chunks):
        queue.put_nowait(
            {"type": "http.request", "body": chunk, "more_body": more or n < len(chunks) - 1}
        )

    def feed(chunk: bytes, more: bool) -> None:
        queue.put_nowait({"type": "http.request", "body": chunk, "more_body": more})

    return queue.get, feed


async def ignore(message: Message) -> None:
    pass


async def test_a_write_waits_for_the_one_before_it_and_reads_pass_freely() -> None:
    app = Recorder()
    turns = WriteTurns(app, turns=1)
    first = asyncio.create_task(turns(request("POST", "a"), body_of(b"1")[0], ignore))
    await app.entered("a")
    second = asyncio.create_task(turns(request("DELETE", "b"), body_of(b"2")[0], ignore))
    read = asyncio.create_task(turns(request("GET", "c"), body_of(b"")[0], ignore))
    await app.entered("c")  # a read is not held up
    app.let_go("c")
    await read
    await asyncio.sleep(0.02)
    assert "in b" not in app.log  # the second write waits for the first's turn
    app.let_go("a")
    app.let_go("b")
    await asyncio.gather(first, second)
    assert app.log.index("out a") < app.log.index("in b")
    assert app.bodies == {"a": b"1", "b": b"2", "c": b""}


async def test_a_body_still_arriving_holds_no_turn_and_arrives_whole() -> None:
    app = Recorder()
    turns = WriteTurns(app, turns=1)
    slow_receive, feed = body_of(b"first half, ", more=True)
    slow = asyncio.create_task(turns(request("POST", "slow"), slow_receive, ignore))
    await asyncio.sleep(0.01)
    app.let_go("quick")
    async with asyncio.timeout(2):  # not behind the slow one
        await turns(request("POST", "quick"), body_of(b"q")[0], ignore)
    assert app.log == ["in quick", "out quick"]
    feed(b"second half", False)
    app.let_go("slow")
    await slow
    assert app.bodies["slow"] == b"first half, second half"


async def test_a_client_gone_before_its_body_arrived_reaches_nothing() -> None:
    app = Recorder()
    messages: list[Message] = [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    await WriteTurns(app, turns=1)(request("POST", "gone"), receive, ignore)
    assert app.log == []


async def test_a_slow_write_keeps_its_turn_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_turns, "HOLD_S", 0.05)
    app = Recorder()
    turns = WriteTurns(app, turns=1)
    slow = asyncio.create_task(turns(request("POST", "slow"), body_of(b"")[0], ignore))
    await app.entered("slow")
    app.let_go("next")
    async with asyncio.timeout(2):  # let in after 50 ms, long before the slow one ends
        await turns(request("POST", "next"), body_of(b"")[0], ignore)
    assert app.log == ["in slow", "in next", "out next"]
    app.let_go("slow")
    await slow
    # The slow one's turn was given back once, by its timer: a third write finds one free.
    app.let_go("third")
    async with asyncio.timeout(1):
        await turns(request("PUT", "third"), body_of(b"")[0], ignore)


async def test_turns_are_given_back_when_the_app_raises() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    turns = WriteTurns(failing, turns=1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            async with asyncio.timeout(1):
                await turns(request("POST", "x"), body_of(b"")[0], ignore)


def test_sqlite_takes_turns_by_default_and_other_databases_do_not(
    settings_factory: Callable[..., Settings],
) -> None:
    assert settings_factory(database_url="sqlite:///x.db").write_turns == 2
    assert settings_factory(database_url="postgresql://h/db").write_turns == 0
    assert settings_factory(database_url="postgresql://h/db", api_write_turns=8).write_turns == 8
    assert settings_factory(database_url="sqlite:///x.db", api_write_turns=0).write_turns == 0


def test_the_app_takes_turns_as_set(settings_factory: Callable[..., Settings]) -> None:
    def has_turns(app: FastAPI) -> bool:
        return any(m.cls == WriteTurns for m in app.user_middleware)

    assert has_turns(create_app(settings_factory(api_write_turns=3), background=False))
    assert not has_turns(create_app(settings_factory(api_write_turns=0), background=False))
