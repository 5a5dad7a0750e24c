"""A request head over 64 KiB is refused with 431 by the server itself, before the app runs,
and however large it is, the server's memory stays flat: `saassy api` and `saassy dev` as real
processes on loopback."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from saassy.kit.request_head import MAX_HEAD_BYTES
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY, on_postgresql
from tests.processes import Served, servers

MIB = 1024 * 1024
CHUNK = b"a" * 65536


@pytest.fixture(scope="module", params=["api", "dev"])
def server(
    request: pytest.FixtureRequest,
    migrated_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """One server of each kind for the module: every test sends it raw heads, none stores."""
    directory = tmp_path_factory.mktemp(f"request-head-{request.param}")
    with servers(directory) as run_server:
        if request.param == "dev":
            yield run_server(["dev", "--data-dir", str(directory / "data")], {}, "/health")
            return
        database_url = migrated_template  # PostgreSQL's test database as it is
        if not on_postgresql():
            shutil.copyfile(migrated_template, directory / "saassy.db")
            database_url = f"sqlite:///{directory / 'saassy.db'}"
        env = {
            "SAASSY_ENV": "test",
            "SAASSY_DATABASE_URL": database_url,
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
            "SAASSY_RUN_ENGINE": "false",
        }
        yield run_server(["api"], env, "/health")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_head(port: int, header_bytes: int, *, in_one_write: bool = False) -> bytes:
    """A GET whose one header holds `header_bytes`; what the server answered before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: saassy.test\r\nX-Big: ")
            if in_one_write:
                sock.sendall(b"a" * header_bytes)
            else:
                for _ in range(header_bytes // len(CHUNK)):
                    sock.sendall(CHUNK)
            sock.sendall(b"\r\nConnection: close\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is already on its way
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def test_a_16_mb_header_gets_431_and_memory_stays_flat(server: Served) -> None:
    send_head(server.port, 16 * MIB)  # the first refusal warms up what a refusal touches
    before = rss_kib(server.pid)
    for _ in range(20):
        answer = send_head(server.port, 16 * MIB)
        assert status_of(answer) == 431
        assert b'"code": "headers_too_large"' in answer
        assert b"connection: close" in answer.lower()
    after = rss_kib(server.pid)
    assert after - before <= 20 * 1024, f"RSS grew from {before} to {after} KiB"
    assert httpx.get(f"{server.url}/health").status_code == 200  # and it still serves


@pytest.mark.parametrize("in_one_write", [False, True])
def test_the_limit_is_on_the_whole_head_whether_it_comes_at_once_or_not(
    server: Served, in_one_write: bool
) -> None:
    over = send_head(server.port, MAX_HEAD_BYTES + 1024, in_one_write=in_one_write)
    assert status_of(over) == 431
    # Under the limit, the app sees the request (and answers it: no token, 401).
    under = send_head(server.port, MAX_HEAD_BYTES - 1024, in_one_write=in_one_write)
    assert status_of(under) == 401


def test_a_large_body_is_not_mistaken_for_a_large_head(server: Served) -> None:
    body = b'{"email": "a@example.com", "password": "' + b"p" * (3 * MIB) + b'"}'
    answer = httpx.post(
        f"{server.url}/api/v1/auth/login",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413  # the body limit's answer, not the head's
