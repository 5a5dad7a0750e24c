"""A small HTTP client of Saassy's task API for the CLI: API-key auth, errors, server-sent events.

The API key goes into the Authorization header and nowhere else: no error message, no repr.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from saassy import __version__

DEFAULT_API_URL = "http://127.0.0.1:8000"
# The server sends a keepalive every 15 s on its streams: a quiet minute means a dead connection.
STREAM_READ_TIMEOUT_S = 60.0


class ApiError(Exception):
    """The API answered with an error (`{"error": {"code", "message", "field"}}`)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.details = details or {}

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(
                response.status_code,
                str(error["code"]),
                str(error["message"]),
                error.get("field"),
                error.get("details"),
            )
        except (ValueError, KeyError, TypeError):
            # Not Saassy's answer (a proxy, a wrong --api-url): say what came back.
            reason = response.reason_phrase or "error"
            return cls(response.status_code, f"http_{response.status_code}", reason)


class ApiUnreachable(Exception):
    """No answer from the API: nothing listens there, DNS, TLS, a timeout."""


@dataclass(frozen=True)
class ServerSentEvent:
    """One event of a `text/event-stream`; a comment (keepalive) has event `comment`."""

    event: str
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Events from the lines of a `text/event-stream` (comments included, ids and retry ignored)."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(event, "\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            yield ServerSentEvent("comment", line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


class TaskClient:
    """The task endpoints of one Saassy API, authenticated with an API key."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"saassy-cli/{__version__}",
            },
            timeout=timeout_s,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"TaskClient({self.api_url!r})"

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.close()

    def submit(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue a task; the answer is the task."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/api/v1/tasks", json=body, headers=headers)

    def list_tasks(
        self,
        *,
        statuses: Sequence[str] = (),
        task_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the organization's tasks, newest first: `{items, next_cursor}`."""
        params: list[tuple[str, str | int]] = [("status", s) for s in statuses]
        params.append(("limit", limit))
        if task_type:
            params.append(("type", task_type))
        if cursor:
            params.append(("cursor", cursor))
        return self._json("GET", "/api/v1/tasks", params=params)

    def task(self, task_id: uuid.UUID) -> dict[str, Any]:
        """One task with its attempts, result, error and usage."""
        return self._json("GET", f"/api/v1/tasks/{task_id}")

    def cancel(self, task_id: uuid.UUID) -> tuple[bool, dict[str, Any]]:
        """Cancel a task: (True, task) when canceled at once, (False, task) when it is stopping."""
        response = self._send("POST", f"/api/v1/tasks/{task_id}/cancel")
        return response.status_code == 200, _json_of(response)

    def logs(self, task_id: uuid.UUID) -> str:
        """The task's output so far, as plain text."""
        return self._send("GET", f"/api/v1/tasks/{task_id}/logs").text

    @contextmanager
    def follow_logs(self, task_id: uuid.UUID) -> Iterator[Iterator[ServerSentEvent]]:
        """The task's log events live (`log`, then `end` with the final status)."""
        with self._stream(f"/api/v1/tasks/{task_id}/logs") as events:
            yield events

    @contextmanager
    def events(self) -> Iterator[Iterator[ServerSentEvent]]:
        """Status changes of the organization's tasks, live (`task.status`)."""
        with self._stream("/api/v1/events") as events:
            yield events

    @contextmanager
    def _stream(self, path: str) -> Iterator[Iterator[ServerSentEvent]]:
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise ApiError.of(response)
                yield self._guarded(parse_sse(response.iter_lines()))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _guarded(self, events: Iterator[ServerSentEvent]) -> Iterator[ServerSentEvent]:
        try:
            yield from events
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _json_of(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise ApiError.of(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        # Some transport errors quote the request's headers: never let the key through.
        reason = (str(exc) or type(exc).__name__).replace(self._api_key, "<api key>")
        return ApiUnreachable(f"cannot reach the API at {self.api_url} ({reason})")


def _json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ApiError(response.status_code, "invalid_response", "not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "invalid_response", "not a JSON object")
    return body
