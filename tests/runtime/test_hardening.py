"""Inside a real sandbox: the usual ways out are closed, writes end in ENOSPC, no host is seen."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import platform
import re
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from saassy.runtime.base import Limits, Runtime, SandboxSpec
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.syscalls import native_arch
from tests.runtime.support import image_for, run_code


@pytest.fixture
def runtime(any_runtime: Runtime) -> Runtime:
    """Both runtimes: the process one (each bwrap binary) and docker."""
    return any_runtime


DENIED_HERE = ("io_uring_setup", "bpf", "keyctl", "mount", "perf_event_open", "ptrace", "setns")
DENIED_HERE += ("userfaultfd", "add_key", "request_key", "umount2", "pivot_root", "swapon")
DENIED_HERE += ("kexec_load", "init_module", "open_by_handle_at", "reboot", "settimeofday")
SYSCALL = """
    import ctypes, json, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def errno_of(number, *args):
        ctypes.set_errno(0)
        done = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
        return 0 if done >= 0 else ctypes.get_errno()
"""
# x86_64 machine code for `mov eax, 20; int 0x80; ret`: getpid through the 32-bit entry point.
INT80_GETPID = """
    import ctypes, mmap
    code = bytes.fromhex("b814000000cd80c3")
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    print("int80", ctypes.CFUNCTYPE(ctypes.c_int)(address)(), flush=True)
"""


def numbers() -> dict[str, int]:
    arch = native_arch()
    assert arch is not None
    return {name: arch.numbers[name] for name in DENIED_HERE}


async def test_denied_syscalls_fail_with_eperm(runtime: Runtime, workspace: Path) -> None:
    calls = f"{{name: errno_of(nr, 0, 0, 0, 0) for name, nr in {numbers()!r}.items()}}"
    code = textwrap.dedent(SYSCALL) + f"print(json.dumps({calls}))\n"
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    assert json.loads(run.stdout[-1]) == dict.fromkeys(DENIED_HERE, errno.EPERM)


async def test_address_randomisation_cannot_be_turned_off(
    runtime: Runtime, workspace: Path
) -> None:
    arch = native_arch()
    assert arch is not None
    # ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO refused; PER_LINUX32, then back to PER_LINUX, allowed.
    values = (0x0040000, 0x0100000, 0x8, 0x0)
    calls = f"[errno_of({arch.numbers['personality']}, value) for value in {values!r}]"
    run = await run_code(runtime, workspace, textwrap.dedent(SYSCALL) + f"print({calls})\n")
    assert run.exit.succeeded, run.stderr
    assert run.stdout == [str([errno.EPERM, errno.EPERM, 0, 0])]


async def test_vsock_is_refused_and_unix_sockets_work(runtime: Runtime, workspace: Path) -> None:
    code = """
        import errno, socket
        try:
            socket.socket(40, socket.SOCK_STREAM)  # AF_VSOCK: no network namespace confines it
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        left, right = socket.socketpair()
        left.send(b"ok")
        print(right.recv(2).decode())
    """
    run = await run_code(runtime, workspace, textwrap.dedent(code))
    assert run.exit.succeeded, run.stderr
    assert run.stdout[-2:] == ["EAFNOSUPPORT", "ok"]


async def test_nested_user_namespaces_are_refused(runtime: Runtime, workspace: Path) -> None:
    code = """
        import subprocess, threading
        done = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
        print(done.returncode, done.stderr.strip())
        worker = threading.Thread(target=print, args=("threads work",))  # clone without CLONE_NEW*
        worker.start(); worker.join()
        print("fork works:", subprocess.run(["true"]).returncode == 0)
    """
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    status, message = run.stdout[0].split(" ", 1)  # util-linux's or busybox's unshare
    assert (status, message.split(": ")[-1]) == ("1", "Operation not permitted")
    assert run.stdout[1:] == ["threads work", "fork works: True"]


async def test_the_filter_alone_refuses_them_where_bwrap_cannot(
    isolated_runtime: ProcessRuntime, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = isolated_runtime  # bwrap's own refusal: the process runtime's only
    assert runtime.host is not None  # as with a bwrap before 0.8.0 (no --disable-userns):
    monkeypatch.setattr(runtime, "host", replace(runtime.host, disables_userns=False))
    code = "import subprocess; subprocess.run(['unshare', '-Ur', 'true'])"
    run = await run_code(runtime, workspace, code)
    assert run.stderr == ["unshare: unshare failed: Operation not permitted"]


async def test_a_task_type_may_allow_user_namespaces(runtime: Runtime, workspace: Path) -> None:
    code = "import subprocess; print(subprocess.run(['unshare', '-Ur', 'id', '-u']).returncode)"
    spec = SandboxSpec(
        name=f"test-userns-{os.getpid()}",
        argv=("/usr/bin/python3", "-c", code),
        image=image_for(runtime),
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
        allow_user_namespaces=True,
    )
    handle = await runtime.start(spec)
    lines = [line.data.decode() async for line in handle.output()]
    assert (await handle.wait()).succeeded
    await handle.cleanup()
    assert lines == ["0", "0"]  # uid 0 in its own namespace, and unshare exited 0


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the i386 entry point is x86's")
async def test_the_32_bit_entry_point_kills_the_process(runtime: Runtime, workspace: Path) -> None:
    outside = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(INT80_GETPID), stdout=asyncio.subprocess.DEVNULL
    )
    if await outside.wait() != 0:
        pytest.skip("this kernel has no 32-bit entry point (IA32 emulation off)")
    run = await run_code(runtime, workspace, INT80_GETPID)
    assert run.stdout == []
    assert run.exit.exit_code == 128 + 31  # SIGSYS, reported by bwrap's or docker's init


async def test_dev_cannot_be_written_and_has_only_the_usual_nodes(
    runtime: Runtime, workspace: Path
) -> None:
    code = """
        import os
        print(sorted(os.listdir("/dev")))
        try:
            open("/dev/x", "w")
        except OSError as exc:
            print(exc.strerror)
    """
    run = await run_code(runtime, workspace, code)
    usual = ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout"]
    usual += ["tty", "urandom", "zero"]
    if runtime.name == "docker":  # dockerd's /dev: a root-owned tmpfs, with POSIX queues
        expected = [str(sorted([*usual, "mqueue"])), "Permission denied"]
    else:  # bwrap's: read-only, with the kernel's core link
        expected = [str(sorted([*usual, "core"])), "Read-only file system"]
    assert run.stdout == expected


WRITE_UNTIL_FULL = """
    import errno, os
    def fill(path, limit_mb):
        written = 0
        with open(path, "wb") as out:
            try:
                for _ in range(limit_mb):
                    written += out.write(b"x" * 1024 * 1024)
                    out.flush()
            except OSError as exc:
                return errno.errorcode[exc.errno], written
        return "no error", written
"""


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm", "/saassy/output"])  # noqa: S108
async def test_writing_past_disk_mb_gives_enospc_not_an_oom_kill(
    runtime: Runtime, workspace: Path, where: str
) -> None:
    code = textwrap.dedent(WRITE_UNTIL_FULL) + f"print(*fill('{where}/big', 64))"
    run = await run_code(runtime, workspace, code, memory_mb=128, disk_mb=24)
    assert run.exit.succeeded, run.stderr
    error, written = run.stdout[0].split()
    assert error == "ENOSPC"
    assert 20 * 2**20 <= int(written) <= 24 * 2**20


async def test_disk_mb_caps_all_the_sandbox_writes_together(
    runtime: Runtime, workspace: Path
) -> None:
    code = textwrap.dedent(WRITE_UNTIL_FULL)
    code += "print(*fill('/tmp/a', 16)); print(*fill('/dev/shm/b', 16))"
    run = await run_code(runtime, workspace, code, memory_mb=128, disk_mb=24)
    assert run.exit.succeeded, run.stderr
    assert run.stdout[0] == f"no error {16 * 2**20}"
    error, written = run.stdout[1].split()
    assert error == "ENOSPC"
    assert int(written) <= 8 * 2**20


async def test_the_number_of_files_is_capped(runtime: Runtime, workspace: Path) -> None:
    code = """
        import errno, os
        made = 0
        try:
            for made in range(100_000):
                open(f"/tmp/{made}", "w").close()
        except OSError as exc:
            print(errno.errorcode[exc.errno], made)
    """
    run = await run_code(runtime, workspace, code, memory_mb=128, disk_mb=16)
    error, made = run.stdout[0].split()
    assert error == "ENOSPC"
    assert 10_000 <= int(made) < 11_000


async def test_no_host_path_or_server_pid_shows_inside(runtime: Runtime, workspace: Path) -> None:
    code = """
        import json, os
        def read(path):
            try:
                return open(path, "rb").read().replace(b"\\0", b" ").decode()
            except OSError as exc:
                return exc.strerror
        seen = {"cwd": os.getcwd(), "env": dict(os.environ), "mounts": read("/proc/self/mountinfo")}
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            seen[f"{pid}/cmdline"] = read(f"/proc/{pid}/cmdline")
            seen[f"{pid}/environ"] = read(f"/proc/{pid}/environ")
        print(json.dumps(seen))
    """
    spec = SandboxSpec(
        name="task-1-attempt-1",  # as the engine names them: the test's names carry our pid
        argv=("/usr/bin/python3", "-c", textwrap.dedent(code)),
        image=image_for(runtime),
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
    )
    handle = await runtime.start(spec)
    lines = [line.data.decode() async for line in handle.output() if line.stream == "stdout"]
    assert (await handle.wait()).succeeded
    await handle.cleanup()
    seen = json.loads(lines[0])
    assert seen["cwd"] == "/tmp"  # noqa: S108 - the sandbox's own
    assert seen["env"].get("PWD", "/tmp") == "/tmp"  # noqa: S108 - docker sets none
    assert "1/cmdline" in seen
    text = json.dumps(seen)
    for host_path in (str(runtime.work_root), str(workspace), os.getcwd(), sys.prefix):
        assert host_path not in text
    server_pid = re.compile(rf"\b{os.getpid()}\b")
    for key, value in seen.items():
        if key != "mounts":  # mount ids and device numbers are small numbers of their own
            assert not server_pid.search(json.dumps(value)), key


async def test_a_program_file_runs_without_its_host_path_showing(
    isolated_runtime: ProcessRuntime, workspace: Path, code_dir: Path
) -> None:
    # The process runtime only: a container runs programs of its image, never the host's files.
    runtime = isolated_runtime
    program = code_dir / "main.py"
    program.write_text(
        "print(__file__); print(open('/proc/1/cmdline').read().split(chr(0))[-2]); "
        "print(open('/proc/self/mountinfo').read())"
    )
    lines = await run_program(runtime, workspace, program)
    assert lines[:2] == ["/saassy/programs/0/main.py"] * 2
    mounts = "\n".join(lines[2:])
    assert "/saassy/programs/0/main.py" in mounts
    if runtime.describe()["enforces_disk"]:  # copied into the sandbox's own file system
        assert str(code_dir) not in mounts


async def run_program(runtime: ProcessRuntime, workspace: Path, program: Path) -> list[str]:
    """Run a Python program file to a successful end; its output lines."""
    spec = SandboxSpec(
        name="task-2-attempt-1",
        argv=("/usr/bin/python3", str(program)),
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
    )
    handle = await runtime.start(spec)
    lines = [line.data.decode() async for line in handle.output()]
    assert (await handle.wait()).succeeded, lines
    await handle.cleanup()
    return lines


async def test_a_program_file_runs_where_the_platform_may_not_mount(
    isolated_runtime: ProcessRuntime,
    workspace: Path,
    code_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A non-root user's platform: no tmpfs to copy programs into, so the host's file is bound
    # (it was bound from its path inside, which bwrap could not find: every task exited 1).
    runtime = isolated_runtime
    assert runtime.host is not None
    monkeypatch.setattr(runtime, "host", replace(runtime.host, can_mount=False))
    program = code_dir / "main.py"
    program.write_text("print(__file__)")
    assert await run_program(runtime, workspace, program) == ["/saassy/programs/0/main.py"]


def test_the_summary_says_the_filter_is_in_force(runtime: Runtime) -> None:
    arch = native_arch()
    assert arch is not None
    assert f"seccomp filter ({arch.name})" in runtime.summary()
    assert runtime.describe()["seccomp"] == arch.name


def test_an_unknown_cpu_refuses_tasks_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    root = tmp_path / "work"
    runtime = ProcessRuntime(work_dir=root)
    assert runtime.host is None
    assert any("no seccomp filter for this CPU (riscv64)" in why for why in runtime.missing)


def test_limits_default_keeps_disk_below_memory() -> None:
    assert Limits().disk_mb < Limits().memory_mb
