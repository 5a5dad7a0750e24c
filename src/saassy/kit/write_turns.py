"""Write requests take turns, so a burst of them cannot starve the engine that shares the process.

On SQLite every transaction of the process waits for its one connection, in arrival order: the
task engine's (a claim, an outcome) queue behind every API request already waiting. Under a
burst of submissions from a few dozen clients, a sandbox's start or end then waited ~200 ms
(docs/benchmarks.md). Here at most `turns` write requests (POST, PUT, PATCH, DELETE) are in
the app at once; the others wait before it, holding nothing, so the engine's transactions are
never behind more than `turns` of theirs. Reads pass freely (a live log follows for minutes).

A request takes its turn only once its whole body has arrived, so a client that sends slowly
holds no turn; and it keeps the turn at most `HOLD_S`, so one that waits on something slow (a
payment provider, a customer's webhook URL) lets the next one in meanwhile.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOLD_S = 0.1


class WriteTurns:
    def __init__(self, app: ASGIApp, turns: int) -> None:
        self.app = app
        self.turns = turns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(turns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        body: list[Message] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone before it was whole: nothing was done, nobody to answer
            body.append(message)
            if not message.get("more_body", False):
                break
        semaphore = self._semaphore_here()
        await semaphore.acquire()
        turn = _Turn(semaphore)
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            turn.give_back()

    def _semaphore_here(self) -> asyncio.Semaphore:
        """The running loop's: an app served again on another loop (tests do) starts afresh."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
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


def _replay(body: list[Message], receive: Receive) -> Receive:
    """The body as it arrived, then whatever comes next (a disconnect)."""
    pending = list(body)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
