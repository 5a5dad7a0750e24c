"""Sandbox abuse must-holds: each hostile program is contained, and nothing of it outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import pytest

from saassy.runtime.base import EndReason, Runtime
from saassy.runtime.container import ContainerSandbox
from saassy.runtime.identity import FIRST_UID, RANGE_SIZE
from saassy.runtime.sandbox import NamespaceSandbox
from tests.runtime.support import cgroup_of, image_for, members, run_code, spec_for


@pytest.fixture
def runtime(any_runtime: Runtime) -> Runtime:
    """Both runtimes: the process one (each bwrap binary) and docker."""
    return any_runtime


def is_sandbox_uid(uid: int) -> bool:
    """Never root; as root, a uid of the sandbox range that no host account has."""
    if os.geteuid() != 0:
        return uid == os.geteuid()
    return FIRST_UID <= uid < FIRST_UID + RANGE_SIZE


def zombie_children() -> list[int]:
    """Our own children left unreaped."""
    zombies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state == "Z" and int(ppid) == os.getpid():
            zombies.append(int(entry))
    return zombies


def host_ids(pids: list[int]) -> set[str]:
    """The real, effective, saved and fs uids and gids of these processes, as the host sees them."""
    ids: set[str] = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(("Uid:", "Gid:")):
                    ids.update(line.split()[1:])
    return ids


async def test_fork_bomb_is_stopped_by_the_pids_limit(runtime: Runtime, workspace: Path) -> None:
    code = """
        import errno, os
        told = False
        while True:
            try:
                os.fork()
            except OSError as exc:
                if not told:  # once per process: its children were forked before
                    told = True
                    print("refused", errno.errorcode[exc.errno], flush=True)
    """
    run = await run_code(runtime, workspace, code, cleanup=False, pids=16, timeout_s=2)
    handle = run.handle
    cgroup = cgroup_of(handle)
    pids_dir = cgroup.dirs.get("pids") or cgroup.dirs[""]
    if isinstance(handle, NamespaceSandbox):  # a container's own cgroup went with it
        events = (pids_dir / "pids.events").read_text().split()
        assert int(events[events.index("max") + 1]) > 0  # forks were refused at the limit
    assert run.stdout[:1] == ["refused EAGAIN"]
    assert run.exit.reason is EndReason.timed_out
    assert members(cgroup) == []
    await handle.cleanup()
    assert not pids_dir.exists()
    host = await asyncio.create_subprocess_exec("/bin/true")
    assert await host.wait() == 0  # the host still forks


async def test_memory_bomb_ends_out_of_memory(runtime: Runtime, workspace: Path) -> None:
    code = """
        hoard = []
        while True:
            hoard.append(bytearray(8 * 1024 * 1024))
    """
    run = await run_code(runtime, workspace, code, memory_mb=64, timeout_s=20)
    assert run.exit.reason is EndReason.out_of_memory
    assert not run.exit.succeeded
    assert run.usage.peak_memory_bytes <= 64 * 1024 * 1024


async def test_cpu_burn_ignoring_sigterm_with_setsid_child_dies_whole(
    runtime: Runtime, workspace: Path
) -> None:
    code = """
        import os, signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    pass
            os._exit(0)
        print("burning", flush=True)
        while True:
            pass
    """
    timeout = 2.0
    started = time.monotonic()
    run = await run_code(runtime, workspace, code, cleanup=False, cpus=1, timeout_s=timeout)
    elapsed = time.monotonic() - started
    handle = run.handle
    assert run.stdout == ["burning"]
    assert run.exit.reason is EndReason.timed_out
    assert elapsed < timeout + 5
    assert members(cgroup_of(handle)) == []
    assert zombie_children() == []
    # Billed CPU is capped by the quota and the kill: about timeout x cpus, never more.
    assert 0.5 * timeout <= run.usage.cpu_seconds <= timeout * 1.0 * 1.15
    await handle.cleanup()


async def test_host_loopback_is_unreachable_and_only_lo_exists(
    runtime: Runtime, workspace: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("connected")
            except OSError as exc:
                print("refused", type(exc).__name__)
            names = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
            print("interfaces", ",".join(sorted(names)))
        """
        run = await run_code(runtime, workspace, code)
    assert run.stdout[0].startswith("refused")
    assert run.stdout[1] == "interfaces lo"


async def test_writes_outside_output_and_tmp_fail(runtime: Runtime, workspace: Path) -> None:
    targets = ["/etc/x", "/usr/x", "/x", "/root/x", "/var/x", str(workspace / "x"), "/proc/x"]
    code = f"""
        import os
        for path in {targets!r}:
            try:
                open(path, "w").write("owned")
                print("WROTE", path)
            except OSError:
                print("denied", path)
        for path in ["/tmp/ok", os.environ["SAASSY_OUTPUT"] + "/ok"]:
            open(path, "w").write("fine")
            print("wrote", path)
    """
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    assert [line for line in run.stdout if line.startswith("WROTE")] == []
    assert len([line for line in run.stdout if line.startswith("denied")]) == len(targets)
    assert not (workspace / "x").exists()
    assert (workspace / "output" / "ok").read_text() == "fine"


async def test_platform_environment_is_invisible(
    runtime: Runtime, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAASSY_CANARY_SECRET", "canary-4f1d")
    code = """
        import os
        print("env", "canary-4f1d" in repr(dict(os.environ)))
        seen = False
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                seen |= b"canary-4f1d" in open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                pass
        print("proc", seen)
        try:
            print("pid1", b"canary-4f1d" in open("/proc/1/environ", "rb").read())
        except OSError:
            print("pid1", False)
        print("uid", os.getuid())
    """
    run = await run_code(runtime, workspace, code)
    assert run.stdout[:3] == ["env False", "proc False", "pid1 False"]
    assert is_sandbox_uid(int(run.stdout[3].removeprefix("uid ")))


async def test_the_sandbox_holds_no_privileges(runtime: Runtime, workspace: Path) -> None:
    code = """
        import resource
        wanted = ("Groups", "NoNewPrivs", "CapPrm", "CapEff", "CapBnd", "CapAmb")
        for line in open("/proc/self/status"):
            if line.split(":")[0] in wanted:
                print(" ".join(line.split()))
        print("core", resource.getrlimit(resource.RLIMIT_CORE)[0])
        print("ready", flush=True)
        import time; time.sleep(30)
    """
    handle = await runtime.start(spec_for(workspace, code, image=image_for(runtime)))
    lines = []
    async for line in handle.output():
        lines.append(line.data.decode())
        if lines[-1] == "ready":
            break
    members_ids = host_ids(members(cgroup_of(handle)))
    await handle.kill()
    await handle.cleanup()
    assert isinstance(handle, NamespaceSandbox | ContainerSandbox)
    # No supplementary group but its own (runc lists a numeric user's own gid there).
    assert lines[0] in {"Groups:", f"Groups: {handle.identity.gid}"}
    assert lines[1:] == [
        "CapPrm: 0000000000000000",
        "CapEff: 0000000000000000",
        "CapBnd: 0000000000000000",
        "CapAmb: 0000000000000000",
        "NoNewPrivs: 1",
        "core 0",
        "ready",
    ]
    # Every member (bwrap, or docker's init) as the host sees it: the sandbox's own uid and gid.
    assert members_ids == {str(handle.identity.uid)}
    assert is_sandbox_uid(handle.identity.uid)
