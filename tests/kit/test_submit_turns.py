"""Task submissions take turns (kit/submit_turns.py): N in the app, bodies first, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from saassy.app import create_app
from saassy.config import Settings
from saassy.kit import submit_turns
from saassy.kit.submit_turns import SubmitTurns
from saassy.tasks.router import router as tasks_router


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
        name = scope["query_string"].decode()
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


def request(method: str, name: str, path: str = "/api/v1/tasks", root: str = "") -> Scope:
    """`name` goes in the query string, where the recorder reads it."""
    return {
        "type": "http",
        "method": method,
        "path": root + path,
        "root_path": root,
        "query_string": name.encode(),
        "headers": [],
    }


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


async def holding_the_only_turn(
    monkeypatch: pytest.MonkeyPatch, hold_s: float, name: str
) -> tuple[Recorder, SubmitTurns, asyncio.Task[None]]:
    """One turn, taken by submission `name`, which stays in the app until let go; a turn is
    given back after `hold_s` at the latest."""
    monkeypatch.setattr(submit_turns, "HOLD_S", hold_s)
    app = Recorder()
    turns = SubmitTurns(app, turns=1)
    holder = asyncio.create_task(turns(request("POST", name), body_of(b"")[0], ignore))
    await app.entered(name)
    return app, turns, holder


async def test_a_submission_waits_for_the_one_before_it_and_other_requests_pass() -> None:
    app = Recorder()
    turns = SubmitTurns(app, turns=1)
    first = asyncio.create_task(turns(request("POST", "a"), body_of(b"1")[0], ignore))
    await app.entered("a")
    second = asyncio.create_task(turns(request("POST", "b", root="/x"), body_of(b"2")[0], ignore))
    others = [
        asyncio.create_task(turns(request("GET", "read"), body_of(b"")[0], ignore)),
        asyncio.create_task(
            turns(request("POST", "login", path="/api/v1/auth/login"), body_of(b"p")[0], ignore)
        ),
        asyncio.create_task(
            turns(request("POST", "cancel", path="/api/v1/tasks/1/cancel"), body_of(b"")[0], ignore)
        ),
    ]
    for name in ("read", "login", "cancel"):  # not held up
        await app.entered(name)
        app.let_go(name)
    await asyncio.gather(*others)
    await asyncio.sleep(0.02)
    assert "in b" not in app.log  # the second submission waits for the first's turn
    app.let_go("a")
    app.let_go("b")
    await asyncio.gather(first, second)
    assert app.log.index("out a") < app.log.index("in b")
    assert app.bodies["a"] == b"1"
    assert app.bodies["b"] == b"2"


async def test_a_body_still_arriving_holds_no_turn_and_arrives_whole() -> None:
    app = Recorder()
    turns = SubmitTurns(app, turns=1)
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


async def test_a_client_gone_mid_body_goes_on_without_a_turn_as_it_would_have(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(submit_turns, "HOLD_S", 60)  # the busy one keeps its turn throughout
    holder = Recorder()
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["query_string"] != b"gone":
            await holder(scope, receive, send)
            return
        seen.extend([await receive(), await receive()])

    messages: list[Message] = [
        {"type": "http.request", "body": b"pa", "more_body": True},
        {"type": "http.request", "body": b"rt", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    turns = SubmitTurns(app, turns=1)
    busy = asyncio.create_task(turns(request("POST", "busy"), body_of(b"")[0], ignore))
    await holder.entered("busy")  # the only turn taken: the gone client must not wait for it
    async with asyncio.timeout(2):
        await turns(request("POST", "gone"), receive, ignore)
    assert seen == [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]
    holder.let_go("busy")
    await busy


async def test_a_slow_submission_keeps_its_turn_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, turns, slow = await holding_the_only_turn(monkeypatch, 0.05, "slow")
    app.let_go("next")
    async with asyncio.timeout(2):  # let in after 50 ms, long before the slow one ends
        await turns(request("POST", "next"), body_of(b"")[0], ignore)
    assert app.log == ["in slow", "in next", "out next"]
    app.let_go("slow")
    await slow
    # The slow one's turn was given back once, by its timer: a third write finds one free.
    app.let_go("third")
    async with asyncio.timeout(1):
        await turns(request("POST", "third"), body_of(b"")[0], ignore)


async def test_a_submission_cancelled_while_it_waits_takes_no_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, turns, holding = await holding_the_only_turn(monkeypatch, 60, "holding")
    waiting = asyncio.create_task(turns(request("POST", "waiting"), body_of(b"")[0], ignore))
    await asyncio.sleep(0.01)
    waiting.cancel()  # its client went away while it waited
    await asyncio.gather(waiting, return_exceptions=True)
    app.let_go("holding")
    await holding
    app.let_go("next")
    async with asyncio.timeout(2):  # the one turn is free again, not lost to the cancelled one
        await turns(request("POST", "next"), body_of(b"")[0], ignore)
    assert app.log == ["in holding", "out holding", "in next", "out next"]


async def test_turns_are_given_back_when_the_app_raises() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    turns = SubmitTurns(failing, turns=1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            async with asyncio.timeout(1):
                await turns(request("POST", "x"), body_of(b"")[0], ignore)


def test_sqlite_takes_turns_by_default_and_other_databases_do_not(
    settings_factory: Callable[..., Settings],
) -> None:
    assert settings_factory(database_url="sqlite:///x.db").submit_turns == 2
    assert settings_factory(database_url="postgresql://h/db").submit_turns == 0
    assert settings_factory(database_url="postgresql://h/db", api_submit_turns=8).submit_turns == 8
    assert settings_factory(database_url="sqlite:///x.db", api_submit_turns=0).submit_turns == 0


def test_turns_hold_the_apps_own_submit_route(settings_factory: Callable[..., Settings]) -> None:
    app = create_app(settings_factory(), background=False)
    [methods] = [r.methods for r in tasks_router.routes if getattr(r, "name", "") == "submit_task"]
    assert (*methods, app.url_path_for("submit_task")) == submit_turns.SUBMIT


def test_the_app_takes_turns_as_set(settings_factory: Callable[..., Settings]) -> None:
    def has_turns(app: FastAPI) -> bool:
        return any(m.cls == SubmitTurns for m in app.user_middleware)

    assert has_turns(create_app(settings_factory(api_submit_turns=3), background=False))
    assert not has_turns(create_app(settings_factory(api_submit_turns=0), background=False))
