"""Task submissions take turns, so a burst of them cannot starve the engine that shares the loop.

Where the API and the task engine share a process (`saassy dev`, `saassy api` with the local
executor), every request in progress puts its next step in the event loop's queue, and each
step of the engine (a claim, a sandbox's start, its end, the outcome) waits behind all of them.
Under a burst of submissions from 16 clients, a sandbox's end then reached the database ~200 ms
after its program began, and for the first 0.2 s one core sat idle waiting for sandboxes
(docs/benchmarks.md). Here at most `turns` submissions (`POST /api/v1/tasks`) are in the app at
once; the others wait before it, their bodies read, with nothing in the loop's queue, in the
order their bodies arrived. Every other request passes freely: a login spends most of its time
hashing in a thread, and holding a turn through that would make every submission wait behind
it.

A submission takes its turn only once its whole body has arrived, so a client that sends slowly
holds no turn (one that disconnects first goes on without a turn, and gets the answer it would
have got); and it keeps the turn at most `HOLD_S`: one that waits on something slow (a rate
limiter's store) lets the next one in meanwhile, so more than `turns` may then be inside.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from saassy.kit.asgi_body import read_body, replay

SUBMIT = ("POST", "/api/v1/tasks")  # the submit route (tests/kit/test_submit_turns.py checks)
HOLD_S = 0.1


class SubmitTurns:
    def __init__(self, app: ASGIApp, turns: int) -> None:
        self.app = app
        self.turns = turns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], _route_path(scope)) != SUBMIT:
            await self.app(scope, receive, send)
            return
        read = await read_body(receive)
        if read.ended_by is not None:  # gone before the body was whole
            await self.app(scope, replay(read, receive), send)
            return
        semaphore = self._semaphore_here()
        await semaphore.acquire()
        turn = _Turn(semaphore)
        try:
            await self.app(scope, replay(read, receive), send)
        finally:
            turn.give_back()

    def _semaphore_here(self) -> asyncio.Semaphore:
        """The running loop's: an app served again on another loop (tests do) starts afresh."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or loop is not self._loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.turns)
        return self._semaphore


class _Turn:
    def __init__(self, turns: asyncio.Semaphore) -> None:
        self._turns: asyncio.Semaphore | None = turns
        self._timer = asyncio.get_running_loop().call_later(HOLD_S, self.give_back)

    def give_back(self) -> None:
        if self._turns is not None:
            self._timer.cancel()
            self._turns.release()
            self._turns = None


def _route_path(scope: Scope) -> str:
    """The path the app routes by: without the prefix it is served under (`--root-path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
