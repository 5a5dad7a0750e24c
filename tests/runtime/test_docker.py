"""The docker runtime against a real dockerd: exit and output, kills, network, usage, orphans,
secrets. Each container runs the locally built busybox image. What both runtimes must hold
(limits, closure, privileges, disk caps, hostile output) is in the shared suites, run on each:
tests/runtime/test_abuse.py and test_hardening.py, tests/dispatch/test_hostile_*.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.types import Mount
from pydantic import SecretStr

from saassy.runtime.base import EndReason, Limits, SandboxRefused
from saassy.runtime.cgroups import tenant_dir_name
from saassy.runtime.container import LABEL_DEADLINE, LABEL_INSTANCE, LABEL_OWNER, LABEL_SANDBOX
from saassy.runtime.container_leftovers import cgroup_roots
from saassy.runtime.docker import DockerRuntime
from saassy.runtime.gate import GATE_PATH, NO_GO_EXIT, Gate, gate_argv
from tests.runtime.docker_support import (
    BASE_IMAGE,
    INSTANCE,
    SHELL_LESS,
    docker_runtime,
    run,
    shell_less_image,
    shell_spec,
    started,
)
from tests.services import IN_CI

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    runtime = docker_runtime()
    yield runtime
    runtime.close()


def _containers(runtime: DockerRuntime, name: str) -> list[dict[str, object]]:
    return runtime.host.client.api.containers(
        all=True, filters={"label": f"{LABEL_SANDBOX}={name}"}
    )


async def test_exit_code_output_and_result(runtime: DockerRuntime, tmp_path: Path) -> None:
    script = (
        'cat "$SAASSY_INPUT"; echo; echo to-stderr >&2; '
        'echo \'{"ok": true}\' > "$SAASSY_OUTPUT/result.json"; '
        'echo \'{"progress": 0.5}\' >> "$SAASSY_EVENTS"; exit 3'
    )
    ran = await run(runtime, shell_spec(tmp_path, script, name="exit-code"))
    assert ran.exit.reason is EndReason.exited
    assert ran.exit.exit_code == 3
    assert ran.stdout == ['{"n": 7}']
    assert ran.stderr == ["to-stderr"]
    assert json.loads((tmp_path / "output" / "result.json").read_text()) == {"ok": True}
    assert (tmp_path / "events.jsonl").read_text() == '{"progress": 0.5}\n'
    assert _containers(runtime, "exit-code") == []  # removed at clean-up


async def test_timeout_kills_the_container(runtime: DockerRuntime, tmp_path: Path) -> None:
    limits = Limits(memory_mb=64, disk_mb=16, timeout_s=1)
    spec = shell_spec(
        tmp_path, "echo started; sleep 300 & sleep 300", name="timeout", limits=limits
    )
    ran = await run(runtime, spec)
    assert ran.exit.reason is EndReason.timed_out
    assert ran.stdout == ["started"]
    assert _containers(runtime, "timeout") == []


async def test_cancel_kills_the_whole_container(runtime: DockerRuntime, tmp_path: Path) -> None:
    spec = shell_spec(tmp_path, "echo started; sleep 300 & sleep 300", name="cancel")
    async with started(runtime, spec) as handle:
        lines = handle.output()
        first = await anext(lines)
        assert first.data == b"started"
        await handle.kill()
        exit_ = await handle.wait()
        state = runtime.host.client.api.inspect_container(handle.container_id)["State"]
        assert state["Running"] is False  # every process went with it
    assert exit_.reason is EndReason.killed


@pytest.fixture
def host_server() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on every host address; records who connected."""
    server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - the point: reachable from anywhere
    server.settimeout(0.2)
    connected: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                peer, address = server.accept()
            except TimeoutError:
                continue
            connected.append(address[0])
            peer.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connected
    stop.set()
    thread.join()
    server.close()


def _host_addresses() -> list[str]:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing address
        outgoing = probe.getsockname()[0]
    finally:
        probe.close()
    return ["127.0.0.1", "172.17.0.1", outgoing]


async def test_no_network(
    runtime: DockerRuntime, tmp_path: Path, host_server: tuple[int, list[str]]
) -> None:
    port, connected = host_server
    tries = "; ".join(
        f"echo | nc -w 1 {address} {port} && echo reached {address}"
        for address in _host_addresses()
    )
    script = f"cat /proc/net/dev | tail -n +3 | cut -d: -f1; {tries}; echo tried"
    ran = await run(runtime, shell_spec(tmp_path, script, name="network"))
    assert [line.strip() for line in ran.stdout] == ["lo", "tried"]
    assert connected == []


async def test_network_without_an_egress_proxy_is_refused_plainly(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    # This runtime was made without a proxy (the shared suite runs one: test_egress_sandbox).
    spec = shell_spec(tmp_path, "echo ran", name="wants-network", network=True)
    with pytest.raises(SandboxRefused) as refused:
        await runtime.start(spec)
    assert refused.value.code == "network_unavailable"
    assert "operator" in str(refused.value)
    assert runtime.refusal_for(network=True) == (
        "network unavailable: no egress proxy runs in this process"
    )
    assert runtime.refusal_for(network=False) is None
    assert runtime.describe()["network"] == "no egress proxy runs in this process"
    assert _containers(runtime, "wants-network") == []


WITHOUT_SETNS = """
import asyncio, sys
from pathlib import Path
from saassy.egress import EgressProxy
from saassy.egress.gateway import RuntimeGateway
from saassy.runtime.base import SandboxRefused, SandboxSpec
from saassy.runtime.docker import DockerRuntime
from tests.egress.support import MappedResolver

runtime = DockerRuntime(instance=sys.argv[1], egress=RuntimeGateway(EgressProxy(MappedResolver())))
print("said:", runtime.refusal_for(network=True))
spec = SandboxSpec(name="no-setns", image=sys.argv[2], input_file=Path(sys.argv[3]),
                   output_dir=Path(sys.argv[3]).parent, network=True)
try:
    asyncio.run(runtime.start(spec))
except SandboxRefused as refused:
    print("said:", refused.code)
"""


def test_network_is_refused_where_the_platform_cannot_enter_a_namespace(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    """Root without CAP_SYS_ADMIN, as a platform in a locked-down container would be: there is
    a proxy, but its socket cannot be opened inside a container's namespace."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        message = "needs root and setpriv (util-linux) to drop CAP_SYS_ADMIN"
        if IN_CI:
            pytest.fail(f"{message}; CI runs the docker tests as root")
        pytest.skip(message)
    input_file = tmp_path / "input.json"
    input_file.write_text("{}")
    drop = ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"]
    done = subprocess.run(  # noqa: S603 - a fixed argv
        [*drop, sys.executable, "-c", WITHOUT_SETNS, INSTANCE, BASE_IMAGE, str(input_file)],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).parents[2], stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("said: ")]
    assert said == [
        "said: network unavailable: the egress proxy needs the platform to run as root: it "
        "opens its socket inside each sandbox's network namespace",
        "said: network_unavailable",
    ]


def _dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    return child.pid


async def test_orphaned_containers_are_removed_at_start(runtime: DockerRuntime) -> None:
    labels = {LABEL_SANDBOX: "orphan-1", LABEL_INSTANCE: INSTANCE, LABEL_OWNER: str(_dead_pid())}
    orphan = runtime.host.client.containers.run(
        BASE_IMAGE, ["sleep", "300"], detach=True, network_mode="none", labels=labels
    )
    mine = {**labels, LABEL_SANDBOX: "alive-1", LABEL_OWNER: str(os.getpid())}
    alive = runtime.host.client.containers.run(
        BASE_IMAGE, ["sleep", "300"], detach=True, network_mode="none", labels=mine
    )
    try:
        starting = DockerRuntime(instance=INSTANCE)  # as a restarted platform does
        freed = await starting.sweep()
        starting.close()
        assert freed >= 1
        assert _containers(runtime, "orphan-1") == []
        assert len(_containers(runtime, "alive-1")) == 1  # its owner (this process) lives
    finally:
        for container in (orphan, alive):
            with contextlib.suppress(Exception):
                container.remove(force=True)


async def test_a_container_past_its_deadline_is_killed_whoever_started_it(
    runtime: DockerRuntime,
) -> None:
    # Its owner's pid is alive (this process: a supervisor that hung, or a pid reused after
    # one died): only the deadline says it must end.
    labels = {LABEL_INSTANCE: INSTANCE, LABEL_OWNER: str(os.getpid())}
    overdue = runtime.host.client.containers.run(
        BASE_IMAGE, ["sleep", "300"], detach=True, network_mode="none",
        labels={**labels, LABEL_SANDBOX: "overdue-1", LABEL_DEADLINE: str(int(time.time()) - 1)},
    )  # fmt: skip
    on_time = runtime.host.client.containers.run(
        BASE_IMAGE, ["sleep", "300"], detach=True, network_mode="none",
        labels={**labels, LABEL_SANDBOX: "on-time-1", LABEL_DEADLINE: str(int(time.time()) + 600)},
    )  # fmt: skip
    try:
        await runtime.sweep()
        overdue.reload()
        on_time.reload()
        assert overdue.status == "exited"
        assert on_time.status == "running"
    finally:
        for container in (overdue, on_time):
            with contextlib.suppress(Exception):
                container.remove(force=True)


@pytest.mark.parametrize("as_env", [False, True])
async def test_secrets_never_enter_the_containers_config(
    runtime: DockerRuntime, tmp_path: Path, as_env: bool
) -> None:
    value = f"tok-{os.urandom(8).hex()}"
    # The gate's quoting taken apart, and more than a pipe holds at once (a secret's maximum).
    other = 'it\'s a "quoted" $HOME `x`\nsecond line\\' + "y" * (64 * 1024 - 40)
    spec = shell_spec(
        tmp_path,
        'cat "$SAASSY_SECRETS/TOKEN"; echo; echo "env ${TOKEN:-none}"; '
        'printf %s "${OTHER:-none}" > "$SAASSY_OUTPUT/other"; sleep 300',
        name=f"secrets-{as_env}",
        secrets={"TOKEN": SecretStr(value), "OTHER": SecretStr(other)},
        secrets_as_env=as_env,
    )
    async with started(runtime, spec) as handle:
        lines = handle.output()
        assert (await anext(lines)).data == b"[redacted:TOKEN]"  # the file, redacted in logs
        shown = (await anext(lines)).data
        inspected = runtime.host.client.api.inspect_container(handle.container_id)
        stored = (_docker_root(runtime) / "containers" / inspected["Id"]).rglob("*")
        on_disk = b"".join(path.read_bytes() for path in stored if path.is_file())
        await handle.kill()
    assert shown == (b"env [redacted:TOKEN]" if as_env else b"env none")
    assert "SAASSY_SECRETS=/saassy/secrets" in inspected["Config"]["Env"]
    assert value not in json.dumps(inspected)  # nor in the entrypoint, labels, mounts ...
    assert b"SAASSY_SECRETS=/saassy/secrets" in on_disk  # dockerd's config was read
    assert value.encode() not in on_disk  # config.v2.json, hostconfig.json, ...
    assert (tmp_path / "output" / "other").read_text() == (other if as_env else "none")


def _docker_root(runtime: DockerRuntime) -> Path:
    return Path(runtime.host.client.info()["DockerRootDir"])


async def test_the_gate_holds_the_program_until_the_platform_lets_it_go(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    """A platform that dies before opening the gate (its end of the FIFO closes without the
    go line) leaves a container that ends without having run the program."""
    fifo = Gate(tmp_path / "gate")
    fifo.make(None)
    container = runtime.host.client.containers.create(
        BASE_IMAGE,
        entrypoint=gate_argv(["sh", "-c", "echo ran"]),
        network_mode="none",
        read_only=True,
        mounts=[Mount(GATE_PATH, str(fifo.path), type="bind", read_only=True)],
        labels={LABEL_INSTANCE: INSTANCE, LABEL_OWNER: str(os.getpid()), LABEL_SANDBOX: "held"},
    )
    try:
        container.start()
        await asyncio.sleep(0.5)
        container.reload()
        assert container.status == "running"  # held: nothing has run
        assert container.logs() == b""
        fifo.close()  # as a platform that died would
        assert container.wait(timeout=10)["StatusCode"] == NO_GO_EXIT
        assert container.logs() == b""
    finally:
        fifo.close()
        container.remove(force=True)


async def test_an_image_without_a_shell_is_refused_at_first_gated_use(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    spec = shell_spec(
        tmp_path,
        "true",
        name="shell-less",
        secrets={"TOKEN": SecretStr("tok-1")},
        secrets_as_env=True,
    ).model_copy(update={"image": shell_less_image(runtime), "argv": ()})
    with pytest.raises(SandboxRefused) as refused:
        await runtime.start(spec)
    assert refused.value.code == "image_unfit"
    assert SHELL_LESS not in str(refused.value)  # the host's details are the operator's
    assert _containers(runtime, "shell-less") == []
    ungated = spec.model_copy(update={"secrets_as_env": False})
    async with started(runtime, ungated) as handle:  # its own CMD needs no shell
        assert (await handle.wait()).succeeded


async def test_output_past_the_cap_is_cut_with_a_marker(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    script = "i=0; while [ $i -lt 20000 ]; do echo line-$i-xxxxxxxxxxxxxxxx; i=$((i+1)); done"
    spec = shell_spec(tmp_path, script, name="flood", max_log_bytes=64 * 1024)
    async with started(runtime, spec) as handle:
        chunks = [chunk async for chunk in handle.output_chunks()]
        exit_ = await handle.wait()
    assert exit_.succeeded
    kept = sum(len(chunk.data) for chunk in chunks if chunk.stream == "stdout")
    assert kept <= 64 * 1024
    notes = b"".join(chunk.data for chunk in chunks if chunk.stream == "system").decode()
    assert "[saassy] log truncated after 0.0625 MiB" in notes
    assert "more bytes of output were read but not kept" in notes


async def test_an_image_gone_since_start_up_is_refused_plainly(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    spec = shell_spec(tmp_path, "true", name="gone").model_copy(update={"image": "saassy/gone:1"})
    with pytest.raises(SandboxRefused) as refused:
        await runtime.start(spec)
    assert refused.value.code == "image_missing"
    assert "saassy/gone" not in str(refused.value)  # the host's details are the operator's
    assert _containers(runtime, "gone") == []


async def test_a_crashed_platforms_sandbox_is_measured_then_freed(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    script = "echo burning; while true; do :; done"
    handle = await runtime.start(shell_spec(tmp_path, script, name="leftover"))
    lines = handle.output()
    assert (await anext(lines)).data == b"burning"
    successor = DockerRuntime(instance=INSTANCE)  # as the platform restarted after a crash
    try:
        ended = await successor.end_leftover("leftover")
        assert ended is not None
        assert ended.cpu_seconds > 0
        assert len(_containers(runtime, "leftover")) == 1  # measured, not yet freed
        again = await successor.recover("leftover")
        assert again is not None
        assert again.cpu_seconds == ended.cpu_seconds  # nothing ran in between
        assert _containers(runtime, "leftover") == []
        assert runtime.host.cgroups.existing("leftover") is None
    finally:
        successor.close()
        await handle.cleanup()


async def test_a_gated_image_rebuilt_under_its_name_runs_its_new_command(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    tag = "saassy/rebuilt:test"
    said = []
    for word in ("one", "two"):
        dockerfile = f'FROM {BASE_IMAGE}\nCMD ["sh", "-c", "echo {word} $TOKEN"]\n'
        runtime.host.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
        spec = shell_spec(
            tmp_path / word, "", name=f"rebuilt-{word}", secrets={"TOKEN": SecretStr("tok-rebuilt")}
        ).model_copy(update={"image": tag, "argv": (), "secrets_as_env": True})
        ran = await run(runtime, spec)
        said += ran.stdout
    assert said == ["one [redacted:TOKEN]", "two [redacted:TOKEN]"]


async def test_a_tenants_sandbox_starts_while_its_other_sandboxes_end(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    # dockerd makes <parent>/tenant-<org>/<sandbox> in the hierarchies we do not use (cpuset,
    # blkio, devices ...) as the container starts; the tenant's other sandboxes ending remove
    # the tenant's directory there once it looks empty. Here they end all the time.
    tenant = tenant_dir_name("ending-org")
    ours = set(runtime.host.cgroups.parents.values())
    parents = [root / runtime.host.cgroup_parent.lstrip("/") for root in cgroup_roots()]
    theirs = [parent / tenant for parent in parents if parent not in ours]
    assert theirs, "dockerd makes cgroups in hierarchies of its own"
    stop = threading.Event()

    def others_ending() -> None:
        while not stop.wait(0.001):
            for directory in theirs:
                with contextlib.suppress(OSError):
                    directory.rmdir()

    ending = threading.Thread(target=others_ending)
    ending.start()
    try:
        for n in range(10):
            spec = shell_spec(tmp_path / str(n), "echo ran", name=f"ending-org-{n}")
            ran = await run(runtime, spec.model_copy(update={"tenant": "ending-org"}))
            assert ran.stdout == ["ran"]
    finally:
        stop.set()
        ending.join()
    assert not any((parent / tenant).exists() for parent in parents), (
        "the tenant's directories went with its last sandbox"
    )
