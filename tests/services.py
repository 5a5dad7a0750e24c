"""Real services the tests talk to; missing ones skip locally and fail in CI."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("SAASSY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip when a service is absent on a laptop; in CI its absence is a failure."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must run every service-backed test")
    pytest.skip(message)
