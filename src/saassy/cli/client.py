"""A small HTTP client of Saassy's API for the CLI: credentials, errors, server-sent events.

    Exception
    ├── ApiError          the API answered with an error: its status, `code` and message
    │   └── SessionEnded  the stored session cannot be refreshed any more: log in again
    └── ApiUnreachable    no answer: nothing listens there, DNS, TLS, a timeout

A secret (an API key, a token) goes into the Authorization header and nowhere else: no error
message, no repr.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from saassy import __version__
from saassy.cli import credentials as store
from saassy.cli.credentials import DEFAULT_API_URL, Credentials

__all__ = ["DEFAULT_API_URL", "ApiClient", "ApiError", "ApiUnreachable", "SessionEnded"]
# The server sends a keepalive every 15 s on its streams: a quiet minute means a dead connection.
STREAM_READ_TIMEOUT_S = 60.0
Waiting = Callable[[str], AbstractContextManager[object]]


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


class SessionEnded(ApiError):
    """The refresh token was refused: the session is over (logged out, expired, reused)."""


class ApiUnreachable(Exception):
    """No answer from the API: nothing listens there, DNS, TLS, a timeout."""


class CredentialAuth(httpx.Auth):
    """`Authorization: Bearer ...`; a session's access token is refreshed when it has expired
    or the API answers 401, and the new pair is stored (the old refresh token is spent)."""

    def __init__(self, credentials: Credentials, refresh: Callable[[Credentials], Credentials]):
        self.credentials = credentials
        self._refresh = refresh

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.credentials.expired:
            self.credentials = self._refresh(self.credentials)
        spent = self.credentials
        request.headers["Authorization"] = f"Bearer {spent.bearer}"
        response = yield request
        if response.status_code == 401 and spent.kind == "session":
            # A 401 means the request was not carried out: sending it again is safe.
            if self.credentials is spent:
                self.credentials = self._refresh(spent)
            request.headers["Authorization"] = f"Bearer {self.credentials.bearer}"
            yield request


class ApiClient:
    """One Saassy API, with the caller's credentials (none for the public endpoints)."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        waiting: Waiting = lambda _: nullcontext(),
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._secrets = _secrets_of(credentials)
        self._waiting = waiting
        self._auth = CredentialAuth(credentials, self._refreshed) if credentials else None
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"User-Agent": f"saassy-cli/{__version__}"},
            timeout=timeout_s,
            transport=transport,
            auth=self._auth,
            # Plain HTTP (a local `saassy dev`) has no certificate to check, and building the
            # TLS context costs ~40 ms of every command's start. Redirects are never followed,
            # so no request reaches an https address unverified.
            verify=not self.api_url.startswith("http://"),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.api_url!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.close()

    # --- tasks ---------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue a task; the answer is the task."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _json_of(self.send("POST", "/api/v1/tasks", json=body, headers=headers))

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
        return _json_of(self.send("GET", "/api/v1/tasks", params=params))

    def task(self, task_id: uuid.UUID) -> dict[str, Any]:
        """One task with its attempts, result, error and usage."""
        return _json_of(self.send("GET", f"/api/v1/tasks/{task_id}"))

    def cancel(self, task_id: uuid.UUID) -> tuple[bool, dict[str, Any]]:
        """Cancel a task: (True, task) when canceled at once, (False, task) when it is stopping."""
        response = self.send("POST", f"/api/v1/tasks/{task_id}/cancel")
        return response.status_code == 200, _json_of(response)

    def logs(self, task_id: uuid.UUID) -> str:
        """The task's output so far, as plain text."""
        return self.send("GET", f"/api/v1/tasks/{task_id}/logs").text

    @contextmanager
    def follow_logs(self, task_id: uuid.UUID) -> Iterator[Iterator[ServerSentEvent]]:
        """The task's log events live (`log`, then `end` with the final status)."""
        with self.stream_events(f"/api/v1/tasks/{task_id}/logs") as events:
            yield events

    def pages(self, path: str, *, limit: int | None = None) -> dict[str, Any]:
        """Every item of a paginated listing (up to `limit`): `{items, next_cursor}`."""
        items: list[Any] = []
        cursor: str | None = None
        while limit is None or len(items) < limit:
            params: dict[str, str | int] = {"limit": 100 if limit is None else min(100, limit)}
            if cursor:
                params["cursor"] = cursor
            page = _json_of(self.send("GET", path, params=params))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return {"items": items, "next_cursor": cursor}

    # --- the wire ------------------------------------------------------------------------------

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON the API answered (an error raises ApiError)."""
        return _any_json_of(self.send(method, path, **kwargs))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._waiting(f"{method} {path}"), self._reporting_transport_errors():
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError.of(response)
        return response

    @contextmanager
    def stream_events(self, path: str) -> Iterator[Iterator[ServerSentEvent]]:
        """A `text/event-stream`'s events, as they come."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        headers = {"Accept": "text/event-stream"}
        with (
            self._reporting_transport_errors(),
            self._http.stream("GET", path, headers=headers, timeout=timeout) as response,
        ):
            if response.is_error:
                response.read()
                raise ApiError.of(response)
            try:
                yield self._guarded(EventSource(response).iter_sse())
            except SSEError as exc:
                raise ApiError(response.status_code, "invalid_response", str(exc)) from None

    @contextmanager
    def download(self, path: str) -> Iterator[httpx.Response]:
        """A streamed response, its body not yet read. Where the API redirects to its storage's
        presigned URL (S3), that URL is fetched instead, without our credentials: it carries
        its own short-lived signature, and a bearer token must never leave for another host."""
        with (
            self._reporting_transport_errors(),
            self._http.stream("GET", path, timeout=STREAM_READ_TIMEOUT_S) as response,
        ):
            if response.is_error:
                response.read()
                raise ApiError.of(response)
            location = response.headers.get("location")
            if response.status_code != 307 or not location:
                yield response
                return
        with (
            _storage_errors(),
            httpx.Client(timeout=STREAM_READ_TIMEOUT_S, follow_redirects=False) as plain,
            plain.stream("GET", location) as stored,
        ):
            if stored.status_code != 200:
                stored.read()
                raise ApiError(
                    stored.status_code,
                    "storage_refused",
                    f"the artifact storage answered {stored.status_code} "
                    f"{stored.reason_phrase}: try again",
                )
            yield stored

    def _guarded(self, events: Iterator[ServerSentEvent]) -> Iterator[ServerSentEvent]:
        with self._reporting_transport_errors():
            yield from events

    @contextmanager
    def _reporting_transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _refreshed(self, spent: Credentials) -> Credentials:
        """A new token pair for the stored session, from the store if another process has
        refreshed it meanwhile, else from `POST /api/v1/auth/refresh` (then stored)."""
        with store.refresh_lock():
            stored = store.load()
            if stored and stored.refresh_token != spent.refresh_token and not stored.expired:
                fresh = stored
            else:
                fresh = self._refresh_now(stored or spent)
                store.save(fresh)
        self._secrets |= _secrets_of(fresh)
        return fresh

    def _refresh_now(self, spent: Credentials) -> Credentials:
        body = {"refresh_token": spent.refresh_token}
        with self._reporting_transport_errors():
            # No auth (the base class adds nothing): not inside the flow that asks for it.
            response = self._http.post("/api/v1/auth/refresh", json=body, auth=httpx.Auth())
        if response.status_code == 401:
            raise SessionEnded(401, "session_ended", "your session has ended: log in again")
        if response.is_error:
            raise ApiError.of(response)
        return spent.refreshed(_json_of(response))

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        # Some transport errors quote the request's headers: never let a secret through.
        reason = str(exc) or type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "<secret>")
        if isinstance(exc, httpx.ConnectError) and "refused" in reason.lower():
            return ApiUnreachable(
                f"cannot reach the API at {self.api_url}: nothing listens there "
                "(start it with `saassy dev`, or set --api-url or SAASSY_API_URL)"
            )
        return ApiUnreachable(f"cannot reach the API at {self.api_url} ({reason})")


def _secrets_of(credentials: Credentials | None) -> set[str]:
    if credentials is None:
        return set()
    found = (credentials.api_key, credentials.access_token, credentials.refresh_token)
    return {secret for secret in found if secret}


def _json_of(response: httpx.Response) -> dict[str, Any]:
    body = _any_json_of(response)
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "invalid_response", "not a JSON object")
    return body


def _any_json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiError(response.status_code, "invalid_response", "not JSON") from None


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        # The presigned URL is a credential for its lifetime: name the host only.
        try:
            where = f" at {exc.request.url.host}"
        except RuntimeError:  # no request attached
            where = ""
        raise ApiUnreachable(
            f"cannot reach the artifact storage{where} ({type(exc).__name__})"
        ) from None
