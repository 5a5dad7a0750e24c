"""localstripe and the Stripe double as real processes on loopback, for billing's tests.

A missing localstripe skips on a laptop and fails under CI, as the other real services do.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from tests.processes import free_port, stop_process
from tests.services import IN_CI

REPOSITORY = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30
API_KEY = "sk_test_saassy"


def require_localstripe() -> None:
    """Skip when localstripe is absent on a laptop; in CI its absence is a failure."""
    if importlib.util.find_spec("localstripe") is not None:
        return
    message = "localstripe is not installed (`make test` installs it)"
    if IN_CI:
        pytest.fail(f"{message}; CI must run every service-backed test")
    pytest.skip(message)


@dataclass
class StripeServices:
    """What a billing test needs of Stripe: the SDK's `api_base` and the double's controls."""

    api_base: str
    localstripe_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def client(
        self, max_network_retries: int = 0, http_client: stripe.HTTPClient | None = None
    ) -> stripe.StripeClient:
        return stripe.StripeClient(
            API_KEY, base_addresses={"api": self.api_base},
            max_network_retries=max_network_retries, http_client=http_client,
        )  # fmt: skip

    def _double(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.api_base}/_double/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def webhook_register(self, url: str, secret: str) -> str:
        """Both the double's events and localstripe's go to `url`, signed with `secret`."""
        registered: str = self._double("POST", "webhooks", json={"url": url, "secret": secret})[
            "id"
        ]
        return registered

    def pay_checkout(self, session_id: str) -> dict[str, Any]:
        """What the hosted page's Pay button does."""
        paid: dict[str, Any] = self._double("POST", f"checkout/{session_id}/pay")
        return paid

    def set_faults(self, paths: list[str], *, error_500: float = 0.0, error_429: float = 0.0,
                   seed: int = 1, lost_answer_share: float = 0.5) -> None:  # fmt: skip
        self._double("POST", "faults", json={
            "paths": paths, "error_500": error_500, "error_429": error_429, "seed": seed,
            "lost_answer_share": lost_answer_share,
        })  # fmt: skip

    def clear_faults(self) -> None:
        self._double("DELETE", "faults")

    def meter_events(self) -> list[dict[str, Any]]:
        accepted: list[dict[str, Any]] = self._double("GET", "meter_events")
        return accepted

    def duplicate_meter_events(self) -> list[dict[str, Any]]:
        """Each identifier sent again: `identifier`, `value` (sent), `accepted_value`."""
        repeats: list[dict[str, Any]] = self._double("GET", "duplicate_meter_events")
        return repeats

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = self._double("GET", "requests")
        return counts

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = self._double("GET", "webhook_deliveries")
        return attempts

    def flush(self) -> None:
        """Both servers forget every object and webhook endpoint."""
        self._double("DELETE", "data")

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout_s=10)
        self.http.close()


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, *argv], cwd=REPOSITORY, stdout=out, stderr=subprocess.STDOUT
        )


PORT_TRIES = 3


def serve_process(
    name: str, argv: list[str], path: str, logs: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """The server on a free loopback port, answering 200 on `path`; another port if the one
    picked was taken before it could bind (the other CI pass starts servers of its own), so
    that it never talks to some other process that happens to answer there."""
    log = logs / f"{name}.log"
    for _ in range(PORT_TRIES):
        port = free_port()
        process = _start([*argv, "--port", str(port)], log)
        base = f"http://127.0.0.1:{port}"
        if _answers(f"{base}{path}", port, process):
            return process, base
    pytest.fail(f"{name} did not start on any of {PORT_TRIES} ports:\n{log.read_text()}")


def _answers(url: str, port: int, process: subprocess.Popen[bytes]) -> bool:
    """True once our process answers 200 at `url`; False if it exited (its port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            answer = httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)  # polling for readiness, not synchronisation
            continue
        if answer.status_code == 200 and _listens(process.pid, port):
            return True
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"{url} did not answer 200 within {START_TIMEOUT_S} s")


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on `port` (Linux's /proc)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    sockets.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in sockets:
                    return True
    return False


@contextmanager
def running_stripe() -> Iterator[StripeServices]:
    """localstripe, then the double in front of it, each on a free loopback port."""
    require_localstripe()
    logs = Path(tempfile.mkdtemp(prefix="saassy-stripe-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    services: StripeServices | None = None
    try:
        processes["localstripe"], localstripe_url = serve_process(
            "localstripe",
            ["-m", "tests.billing.stripe_double.anchored_localstripe", "--from-scratch"],
            "/v1/customers",
            logs,
        )
        processes["double"], api_base = serve_process(
            "double",
            ["-m", "tests.billing.stripe_double", "--localstripe", localstripe_url],
            "/_double/requests",
            logs,
        )
        services = StripeServices(api_base, localstripe_url, processes)
        yield services
    finally:
        if services is not None:
            services.stop()
        else:
            for process in processes.values():
                process.kill()
                process.wait()
