"""Waiting for a task to end: its logs live (SSE), its status from the event stream, or polling."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from saassy.cli.client import ApiError, ApiUnreachable, TaskClient
from saassy.cli.common import errors
from saassy.cli.task_views import is_terminal

POLL_FIRST_S, POLL_MAX_S = 0.25, 2.0


def follow_to_end(client: TaskClient, task_id: uuid.UUID, *, logs_to: TextIO) -> dict[str, Any]:
    """Write the task's logs as they come, then return the ended task."""
    attempt = 0
    try:
        with client.follow_logs(task_id) as events:
            for event in events:
                if event.event == "end":
                    break
                if event.event != "log":
                    continue
                chunk = json.loads(event.data)
                if attempt and chunk["attempt"] != attempt:
                    logs_to.write(f"[saassy] attempt {chunk['attempt']}\n")
                attempt = chunk["attempt"]
                out = sys.stderr if chunk.get("stream") == "stderr" else logs_to
                out.write(chunk["data"])
                out.flush()
    except ApiError as exc:
        if exc.code != "engine_unavailable":
            raise
        # The engine runs in another process: no live stream here, so wait, then print it all.
        task = await_end(client, task_id)
        logs_to.write(client.logs(task_id))
        return task
    task = client.task(task_id)
    return task if is_terminal(task) else await_end(client, task_id)


def await_end(client: TaskClient, task_id: uuid.UUID) -> dict[str, Any]:
    """The task once it ended, with a spinner on standard error meanwhile."""
    with errors.status(f"task {task_id}: waiting") as spinner:

        def show(task: dict[str, Any]) -> None:
            spinner.update(f"task {task_id}: {task['status']}")

        try:
            return _await_by_events(client, task_id, show)
        except (ApiError, ApiUnreachable, StreamEnded):
            # No live events here (another process runs the engine, a proxy cut the stream).
            return _await_by_polling(client, task_id, show)


class StreamEnded(Exception):
    """The event stream closed before the task ended."""


def _await_by_events(
    client: TaskClient, task_id: uuid.UUID, show: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    with client.events() as events:
        for event in events:
            # The first event (": connected") means subscribed: read the task once, then again
            # on each of its status changes and on keepalives (in case the bus dropped one).
            if event.event == "task.status" and json.loads(event.data).get("task_id") != str(
                task_id
            ):
                continue
            task = client.task(task_id)
            if is_terminal(task):
                return task
            show(task)
    raise StreamEnded


def _await_by_polling(
    client: TaskClient, task_id: uuid.UUID, show: Callable[[dict[str, Any]], None]
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
