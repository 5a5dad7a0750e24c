"""localstripe and the tests' Stripe double as processes on loopback, for the billing bench.

The double lives in the test tree (tests/billing/stripe_double); it is run here as a module,
as billing's tests run it, without importing the test tree.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import stripe

REPOSITORY = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_saassy_bench"
START_TIMEOUT_S = 30


@dataclass(frozen=True)
class StripeServers:
    api_base: str

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(API_KEY, base_addresses={"api": self.api_base})

    def flush(self) -> None:
        """Both servers forget every object."""
        httpx.delete(f"{self.api_base}/_double/data", timeout=30).raise_for_status()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # polling for readiness
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


@contextmanager
def running_stripe_servers() -> Iterator[StripeServers]:
    logs = Path(tempfile.mkdtemp(prefix="saassy-bench-stripe-"))
    localstripe, double = _free_port(), _free_port()
    commands = {
        "localstripe": ["-m", "tests.billing.stripe_double.anchored_localstripe",
                        "--port", str(localstripe), "--from-scratch"],
        "double": ["-m", "tests.billing.stripe_double", "--port", str(double),
                   "--localstripe", f"http://127.0.0.1:{localstripe}"],
    }  # fmt: skip
    ready = {
        "localstripe": f"http://127.0.0.1:{localstripe}/v1/customers",
        "double": f"http://127.0.0.1:{double}/_double/requests",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in commands.items():
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter
                    [sys.executable, *argv], cwd=REPOSITORY, stdout=out, stderr=subprocess.STDOUT
                )
            processes.append(process)
            _wait(ready[name], process, log)
        yield StripeServers(f"http://127.0.0.1:{double}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
