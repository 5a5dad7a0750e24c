"""A task's network is the egress proxy and nothing else: real sandboxes of each runtime (the
process runtime's bwrap, docker containers behind the gate), a real proxy, a loopback origin
the proxy knows as `allowed.test` (pinned, as an operator would) and a resolver that maps
`rebind.test` to loopback (as hostile DNS would)."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.egress import EgressProxy
from saassy.egress.gateway import RuntimeGateway
from saassy.models import TaskStatus
from saassy.runtime.base import Runtime
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.runtimes import RUNTIME_KINDS, sandbox_runtime, settings_for, to_toml
from tests.dispatch.support import task_row, usage_of, wait_for_status
from tests.egress.support import MappedResolver, Origin
from tests.runtime.support import PYTHON

DOWNLOAD, UPLOAD, TUNNELLED = 1_000_000, 500_000, 1000
REFUSED_PINNED = (
    "saassy egress: allowed.test:{port} refused: its name resolves to a loopback address\n"
)
PROGRAM = """
import http.client, json, os, socket, urllib.error, urllib.request
PORT = json.load(open(os.environ["SAASSY_INPUT"]))["port"]
seen = {{}}
def fetch(name, url, data=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            seen[name] = [r.status, len(r.read())]
    except urllib.error.HTTPError as e:
        seen[name] = [e.code, e.read().decode()]
    except OSError as e:
        seen[name] = ["error", type(e).__name__]
fetch("download", f"http://allowed.test:{{PORT}}/bytes/{download}")
fetch("upload", f"http://allowed.test:{{PORT}}/echo", data=b"x" * {upload})
fetch("denied", f"http://denied.test:{{PORT}}/bytes/10")
fetch("loopback", f"http://127.0.0.1:{{PORT}}/bytes/10")
fetch("metadata", "http://169.254.169.254/latest/meta-data/")
fetch("rebind", f"http://rebind.test:{{PORT}}/bytes/10")
tunnel = http.client.HTTPConnection("127.0.0.1", 3128, timeout=10)
tunnel.set_tunnel("allowed.test", PORT)
try:
    tunnel.request("GET", "/bytes/{tunnelled}")
    answer = tunnel.getresponse()
    seen["tunnel"] = [answer.status, len(answer.read())]
except OSError as e:
    seen["tunnel"] = ["error", str(e)]
bypasses = {{"bypass_loopback": ("127.0.0.1", PORT), "bypass_private": ("10.0.0.1", 80),
            "bypass_public": ("1.1.1.1", 80)}}
for name, address in bypasses.items():
    try:
        socket.create_connection(address, timeout=2).close()
        seen[name] = "connected"
    except OSError as e:
        seen[name] = type(e).__name__
try:
    socket.getaddrinfo("allowed.test", 80)
    seen["dns"] = "resolved"
except OSError:
    seen["dns"] = "none"
json.dump(seen, open(os.environ["SAASSY_OUTPUT"] + "/result.json", "w"))
"""


PROGRAM_TEXT = textwrap.dedent(PROGRAM).format(
    download=DOWNLOAD, upload=UPLOAD, tunnelled=TUNNELLED
)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.stop()


@pytest.fixture
async def runtime(runtime_kind: str) -> AsyncIterator[Runtime]:
    proxy = EgressProxy(
        MappedResolver({"rebind.test": ["127.0.0.1"]}), hosts={"allowed.test": "127.0.0.1"}
    )
    async with sandbox_runtime(runtime_kind, egress=RuntimeGateway(proxy)) as runtime:
        assert runtime.refusal_for(network=True) is None, runtime.summary()
        yield runtime


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], origin: Origin, tmp_path: Path, runtime_kind: str
) -> Settings:
    resources = {"memory_mb": 128, "cpus": 0.5, "pids": 32, "disk_mb": 16}
    allowed = {"listed": [f"allowed.test:{origin.port}", f"rebind.test:{origin.port}"], "open": []}
    catalog = {
        "default_plan": "small",
        "plans": {"small": {"name": "Small", "max_concurrent_tasks": 2}},
        "task_types": {
            name: {
                "title": name,
                "command": [PYTHON, "-c", PROGRAM_TEXT],
                "network": True,
                "network_allow": allow,
                "resources": resources,
            }
            for name, allow in allowed.items()
        },
    }
    path = tmp_path / "catalog.toml"
    path.write_text(to_toml(catalog))
    return settings_for(runtime_kind, settings_factory, path, allowed, tmp_path)


def refused(reason: str) -> list[Any]:
    return [403, reason]


@pytest.mark.parametrize("runtime_kind", RUNTIME_KINDS, indirect=True)
@pytest.mark.parametrize("task_type", ["listed", "open"])
async def test_a_sandbox_reaches_only_what_its_type_allows_and_every_byte_is_metered(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    origin: Origin,
    runtime: Runtime,
    task_type: str,
) -> None:
    engine = engine_factory(runtime)
    await engine.start()
    account = await signup()
    submitted = await client.post(
        "/api/v1/tasks",
        headers=account.headers,
        json={"type": task_type, "input": {"port": origin.port}},
    )
    assert submitted.status_code == 202, submitted.text
    task_id = uuid.UUID(submitted.json()["id"])
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=60)
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded, task.error
    seen = task.result
    for name in ("loopback", "metadata", "rebind"):
        assert seen[name][0] == 403, (name, seen[name])
    assert "loopback address" in seen["rebind"][1]  # allowed by name, refused by address
    assert seen["bypass_loopback"] == "ConnectionRefusedError"  # nothing listens in there
    assert seen["bypass_private"] == seen["bypass_public"] == "OSError"  # no route at all
    assert seen["dns"] == "none"
    usage = await usage_of(ctx.sessionmaker, task_id)
    if task_type == "listed":
        assert seen["download"] == [200, DOWNLOAD]
        assert seen["upload"] == [200, UPLOAD]
        assert seen["tunnel"] == [200, TUNNELLED]
        assert seen["denied"][0] == 403
        assert "not in this task type's network_allow" in seen["denied"][1]
        sent = DOWNLOAD + 2 * UPLOAD + TUNNELLED  # payload both ways; heads are the rest
        assert abs(usage[(1, "egress_bytes")] - sent) / sent < 0.05
        assert usage[(1, "egress_connections")] == 3
        assert usage[(1, "egress_refused")] == 4
    else:
        # Any public address: the operator's pinned loopback name is not public, and is for
        # the types that list it; a name that does not exist just fails.
        for name in ("download", "upload"):
            assert seen[name] == [403, REFUSED_PINNED.format(port=origin.port)], name
        assert seen["tunnel"] == ["error", "Tunnel connection failed: 403 Forbidden"]
        assert seen["denied"][0] == 502
        assert "cannot resolve denied.test" in seen["denied"][1]
        assert usage[(1, "egress_bytes")] == 0
        assert usage[(1, "egress_connections")] == 0
        assert usage[(1, "egress_refused")] == 6
    logs = (await client.get(f"/api/v1/tasks/{task_id}/logs", headers=account.headers)).text
    assert "[saassy]" in logs
    assert "169.254.169.254" in logs
