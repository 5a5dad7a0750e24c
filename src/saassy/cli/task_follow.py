"""Waiting for a task to end: its log stream (server-sent events) until `end`, else polling.

The log stream is race-free by construction: the server subscribes, replays what was logged,
then reads the status, so a task that ended before the stream opened still sends `end`.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from saassy.cli.client import ApiClient, ApiError, ApiUnreachable
from saassy.cli.common import waiting
from saassy.cli.task_views import is_terminal

POLL_FIRST_S, POLL_MAX_S = 0.25, 2.0


def follow_to_end(client: ApiClient, task_id: uuid.UUID, *, logs_to: TextIO) -> dict[str, Any]:
    """Write the task's logs as they come, then return the ended task."""
    attempt = 0

    def write(chunk: dict[str, Any]) -> None:
        nonlocal attempt
        if attempt and chunk["attempt"] != attempt:
            logs_to.write(f"[saassy] attempt {chunk['attempt']}\n")
        attempt = chunk["attempt"]
        out = sys.stderr if chunk.get("stream") == "stderr" else logs_to
        out.write(chunk["data"])
        out.flush()

    try:
        _read_logs_to_end(client, task_id, write)
    except ApiError as exc:
        if exc.code != "engine_unavailable":
            raise
        # The engine runs in another process: no live stream here, so wait, then print it all.
        task = await_end(client, task_id)
        logs_to.write(client.logs(task_id))
        return task
    task = client.task(task_id)
    return task if is_terminal(task) else await_end(client, task_id)


def await_end(client: ApiClient, task_id: uuid.UUID) -> dict[str, Any]:
    """The task once it ended, with a spinner on standard error (on a terminal) meanwhile."""
    with waiting(f"task {task_id}: waiting") as spinner:

        def show(status: str) -> None:
            if spinner is not None:
                spinner.update(f"task {task_id}: {status}")

        try:
            _read_logs_to_end(client, task_id, lambda _: show("running"))
            task = client.task(task_id)
            if is_terminal(task):
                return task
        except (ApiError, ApiUnreachable):
            pass  # No live stream here (another process runs the engine, a proxy cut it).
        return _await_by_polling(client, task_id, lambda task: show(task["status"]))


def _read_logs_to_end(
    client: ApiClient, task_id: uuid.UUID, on_chunk: Callable[[dict[str, Any]], None]
) -> None:
    """Read the task's log events until `end` (or until the stream closes)."""
    with client.follow_logs(task_id) as events:
        for event in events:
            if event.event == "end":
                return
            if event.event == "log":
                on_chunk(json.loads(event.data))


def _await_by_polling(
    client: ApiClient, task_id: uuid.UUID, show: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    delay = POLL_FIRST_S
    while True:
        try:
            task = client.task(task_id)
        except ApiError as exc:
            if exc.status_code != 429:
                raise
            time.sleep(float(exc.details.get("retry_after_s", POLL_MAX_S)))
            continue
        if is_terminal(task):
            return task
        show(task)
        time.sleep(delay)  # polling an API, there is nothing to wait on
        delay = min(delay * 2, POLL_MAX_S)
