"""The launcher process: the child it starts is ours, set up exactly as asked before its exec,
and holds nothing else of the launcher's or of ours; the launcher comes back if it dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saassy.runtime import launcher as launcher_module
from saassy.runtime.cgroups import detect_cgroups
from saassy.runtime.launcher import ChildSetup, Launcher, Launching, launcher
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import NamespaceSandbox
from saassy.runtime.spawn import Launch, spawn_prepared
from tests.runtime.conftest import require_isolation
from tests.runtime.support import run_code, spec_for
from tests.runtime.test_abuse import is_sandbox_uid
from tests.runtime.test_spawn import LOOPS, open_fds, run_on

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the launcher drops root: run as root")

UID = 65000  # no sandbox runs as this meanwhile
REPORT = """
grep -E '^(Uid|Gid|Groups|NoNewPrivs|SigIgn):' /proc/self/status
echo "sid $(cut -d' ' -f6 /proc/self/stat) pid $$ ppid $PPID"
for fd in /proc/self/fd/*; do echo "fd ${fd##*/}"; done
echo "memfd $(cat /proc/self/fd/{memfd})"
echo "cwd $(pwd)"
grep -E '^Max (address space|cpu time|processes|core file size|open files)' /proc/self/limits
env | sort | sed 's/^/env /'
sed 's/^/cgroup /' /proc/self/cgroup
"""


def report(setup: ChildSetup, *, via: Launcher | None = None) -> tuple[int, list[str]]:
    """Run REPORT in / with a memory file passed (at its number here); (its pid, its lines)."""
    memory = os.memfd_create("test", os.MFD_CLOEXEC)
    os.write(memory, b"kept at its number")
    os.lseek(memory, 0, os.SEEK_SET)
    read, write = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = (
            (via or launcher())
            .send(
                ["/bin/sh", "-c", REPORT.replace("{memfd}", str(memory)) + f"echo passed {memory}"],
                env={"ONLY": "this"},
                cwd="/",
                stdio=(devnull, write, write),
                pass_fds=(memory,),
                setup=setup,
            )
            .wait()
        )
    finally:
        for fd in (memory, write, devnull):
            os.close(fd)
    with os.fdopen(read) as output:
        lines = output.read().splitlines()
    return pid, lines


@pytest.fixture
def cgroup_files() -> Iterator[list[str]]:
    """A cgroup of its own in every controller the runtime uses (their `tasks`/`cgroup.procs`)."""
    layout = detect_cgroups("saassy-test-launcher")
    if layout is None:
        pytest.skip("no writable cgroups here")
    name = f"launched-{os.getpid()}"
    dirs = {key: parent / name for key, parent in layout.parents.items()}
    for directory in dirs.values():
        directory.mkdir()
    try:
        yield [str(d / ("tasks" if layout.version == 1 else "cgroup.procs")) for d in dirs.values()]
    finally:
        for directory in dirs.values():
            directory.rmdir()


def test_the_child_is_ours_and_set_up_as_asked(cgroup_files: list[str]) -> None:
    setup = ChildSetup(
        joins=tuple(cgroup_files),
        rlimits=(
            (resource.RLIMIT_AS, 512 * 1024 * 1024),
            (resource.RLIMIT_CPU, 9),
            (resource.RLIMIT_NPROC, 77),
            (resource.RLIMIT_CORE, 0),
        ),
        uid=UID,
        gid=UID,
    )
    pid, lines = report(setup)
    _, status, rusage = os.wait4(pid, 0)  # our child: reaped here, with its rusage
    assert os.waitstatus_to_exitcode(status) == 0, lines
    assert rusage.ru_maxrss > 0
    said = "\n".join(lines)
    assert f"Uid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
    assert f"Gid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
    assert [line.split(":", 1)[1].strip() for line in lines if line.startswith("Groups:")] == [""]
    assert "NoNewPrivs:\t1" in lines
    # Nothing ignored reaches the program: what Python, the launcher or whoever started this
    # process ignored is set back to default (glibc keeps 32 and 33 to itself: none may).
    [ignored] = [int(line.split()[1], 16) for line in lines if line.startswith("SigIgn:")]
    reserved = [n for n in range(1, 65) if n not in signal.valid_signals()]
    assert ignored & ~sum(1 << (n - 1) for n in reserved) == 0, hex(ignored)
    sid, _, own, _, parent = next(line for line in lines if line.startswith("sid")).split()[1:]
    assert sid == own  # a session of its own
    assert int(parent) == os.getpid()
    # stdin, stdout, stderr, the one passed at its number, and the dir the glob itself opened.
    passed = int(next(line for line in lines if line.startswith("passed")).split()[1])
    fds = {int(line.split()[1]) for line in lines if line.startswith("fd ")}
    assert {0, 1, 2, passed} <= fds, said
    assert len(fds - {0, 1, 2, passed}) <= 1, said
    assert "memfd kept at its number" in lines
    assert "cwd /" in lines
    # Only what was asked for, and what sh itself sets.
    assert {line for line in lines if line.startswith("env ")} <= {
        "env ONLY=this", "env PWD=/", "env SHLVL=1", "env _=/usr/bin/env",
    }, said  # fmt: skip
    assert "env ONLY=this" in lines
    limits = {line[:26].strip(): line[26:].split()[0] for line in lines if line.startswith("Max")}
    assert limits.pop("Max open files") == str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    assert limits == {
        "Max cpu time": "9",
        "Max processes": "77",
        "Max core file size": "0",
        "Max address space": str(512 * 1024 * 1024),
    }
    cgroup_lines = [line for line in lines if line.startswith("cgroup ")]
    for path in cgroup_files:
        leaf = Path(path).parent.name
        assert any(line.endswith(f"/{leaf}") for line in cgroup_lines), (path, cgroup_lines)


def test_a_signal_the_server_was_started_with_ignored_is_default_in_the_program() -> None:
    """What a service manager or a shell left ignored for the server (SIGHUP under nohup)
    is not the program's: an exec keeps ignored signals, so the clone sets them back."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    own = Launcher()
    try:
        pid, lines = report(ChildSetup(), via=own)  # a launcher started while it is ignored
        os.waitpid(pid, 0)
    finally:
        own.stop()
        signal.signal(signal.SIGHUP, previous)
    [ignored] = [int(line.split()[1], 16) for line in lines if line.startswith("SigIgn:")]
    assert not ignored & (1 << (signal.SIGHUP - 1)), hex(ignored)


def test_without_ids_it_runs_as_the_platform_with_no_flag_added() -> None:
    """A non-root platform's launch: no drop, and no no-new-privs (a setuid bwrap keeps its
    setuid mode there, as it would run from a shell)."""
    pid, lines = report(ChildSetup())
    os.waitpid(pid, 0)
    assert "Uid:\t0\t0\t0\t0" in lines
    assert "NoNewPrivs:\t0" in lines


def test_what_fails_before_the_exec_is_raised_with_where_it_failed(tmp_path: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(OSError, match=r"exec: .*No such file or directory.*missing"):
            launcher().send(
                [str(tmp_path / "missing")], env={}, cwd="/", stdio=(devnull,) * 3,
                setup=ChildSetup(),
            ).wait()  # fmt: skip
        marker = tmp_path / "ran"
        with pytest.raises(OSError, match=r"joining .*/no-such-cgroup/tasks"):
            launcher().send(
                ["/bin/touch", str(marker)], env={}, cwd="/", stdio=(devnull,) * 3,
                setup=ChildSetup(joins=(str(tmp_path / "no-such-cgroup" / "tasks"),)),
            ).wait()  # fmt: skip
        assert not marker.exists()  # nothing ran that was not set up as asked
    finally:
        os.close(devnull)


def our_children() -> list[tuple[int, str, bytes]]:
    """(pid, state, command line) of each child of this process, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if int(parent) == os.getpid():
                found.append((int(entry.name), state, (entry / "cmdline").read_bytes()))
    return found


def zombies_of_ours() -> set[int]:
    return {pid for pid, state, _ in our_children() if state == "Z"}


def test_a_launcher_that_died_is_replaced_and_leaves_no_zombie() -> None:
    """Its clone forked ahead is our child: reaped here, not left a zombie per restart."""
    before = zombies_of_ours()
    own = Launcher()
    try:
        for _ in range(3):
            pid, _ = report(ChildSetup(), via=own)
            os.waitpid(pid, 0)
            first = own.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            while own.pid is not None:  # reaped as it is asked about
                time.sleep(0.01)
            pid, lines = report(ChildSetup(uid=UID, gid=UID), via=own)
            os.waitpid(pid, 0)
            assert f"Uid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
            assert own.pid not in (None, first)
    finally:
        own.stop()
    assert own.pid is None
    time.sleep(0.1)  # the last clone reads the end and exits
    assert zombies_of_ours() <= before


def test_a_request_of_any_size_and_the_default_descriptor_limit() -> None:
    """Secrets may be handed as environment variables (64 KiB each, escaped in JSON up to six
    bytes a character): a request of several hundred KiB; and many hosts keep the soft
    descriptor limit at 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    own = Launcher()
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        secret = "\u4e2d" * 20_000  # 60 KB in UTF-8, 120 KB as JSON
        read, write = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = own.send(
                [
                    "/bin/sh",
                    "-c",
                    'env | wc -c; grep "Max open files" /proc/self/limits',
                ],
                env={"A": secret, "B": secret, "C": secret},
                cwd="/",
                stdio=(devnull, write, write),
                setup=ChildSetup(uid=UID, gid=UID),
            ).wait()
        finally:
            os.close(write)
            os.close(devnull)
        with os.fdopen(read) as output:
            count, limits = output.read().splitlines()
        os.waitpid(pid, 0)
        assert int(count) > 3 * len(secret.encode())
        assert limits.split()[3] == str(min(1024, hard))  # the program gets the soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        own.stop()


def test_more_descriptors_than_a_message_carries_are_refused_before_asking() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="at most 248 descriptors"):
            launcher().send(
                ["/bin/true"], env={}, cwd="/", stdio=(devnull,) * 3,
                pass_fds=[devnull] * 249, setup=ChildSetup(),
            ).wait()  # fmt: skip
    finally:
        os.close(devnull)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_root_without_the_capability_to_change_uid_is_told_so() -> None:
    """A container run as uid 0 with CAP_SETUID and CAP_SETGID dropped: the line names them,
    not user namespaces or bwrap."""
    code = (
        "import tempfile; from pathlib import Path; "
        "from saassy.runtime.process import ProcessRuntime; "
        "r = ProcessRuntime(work_dir=Path(tempfile.mkdtemp(prefix='saassy-sandboxes-test-'))); "
        "print([m for m in r.missing if 'uid' in m])"
    )
    setpriv = shutil.which("setpriv")
    assert setpriv is not None
    done = subprocess.run(  # noqa: S603 - fixed argv
        [setpriv, "--bounding-set", "-setuid,-setgid", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert (
        "the platform runs as root but cannot become a sandbox uid ([Errno 1] Operation not "
        "permitted): grant it CAP_SETUID and CAP_SETGID, or run it as a non-root user"
    ) in done.stdout, done.stdout + done.stderr


def test_a_forked_process_gets_a_launcher_of_its_own() -> None:
    """A launcher's children are its parent's: a process forked from one that used it (a
    Celery worker's child) must not ask the parent's, whose children it could not reap."""
    pid, _ = report(ChildSetup())
    os.waitpid(pid, 0)
    parent_launcher = launcher().pid
    forked = os.fork()
    if forked == 0:
        code = 1
        try:
            child, _ = report(ChildSetup())
            os.waitpid(child, 0)  # ChildProcessError if it were not ours
            code = 0 if launcher().pid not in (None, parent_launcher) else 2
            launcher().stop()
        finally:
            os._exit(code)
    _, status = os.waitpid(forked, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert launcher().pid == parent_launcher


def test_a_probe_that_hangs_is_killed_at_its_timeout() -> None:
    returncode, _ = launcher().run(["/bin/sleep", "30"], setup=ChildSetup(), timeout_s=0.2)
    assert returncode == -signal.SIGKILL


async def test_bwrap_itself_runs_without_privileges_or_a_way_to_gain_them(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    """bwrap, outside the sandbox as its uid, holds no capability, no group, and no way back."""
    require_isolation(runtime)
    code = 'print("ready", flush=True); import time; time.sleep(30)'
    handle = await runtime.start(spec_for(workspace, code))
    try:
        async for line in handle.output():
            if line.data == b"ready":  # bwrap has set the sandbox up: its own set-up is done
                break
        assert isinstance(handle, NamespaceSandbox)
        assert handle._spawned is not None
        lines = Path(f"/proc/{handle._spawned.pid}/status").read_text().splitlines()  # noqa: ASYNC240
    finally:
        await handle.kill()
        await handle.cleanup()
    status = dict(line.split(":", 1) for line in lines)
    assert status["Name"].strip() == "bwrap"
    assert status["Uid"].split() == [str(handle.identity.uid)] * 4
    assert status["Groups"].strip() == ""
    assert status["CapEff"].strip() == status["CapPrm"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"


@pytest.fixture
def setuid_bwrap() -> Iterator[Path]:
    """A setuid-root copy of the system's bwrap, where another uid may reach it."""
    system = shutil.which("bwrap")
    if system is None:
        pytest.skip("needs the system's bwrap to copy (apt install bubblewrap)")
    directory = Path(tempfile.mkdtemp(prefix="saassy-setuid-bwrap-"))
    try:
        directory.chmod(0o755)
        binary = directory / "bwrap"
        shutil.copy(system, binary)
        binary.chmod(0o4755)
        yield binary
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_setuid_bwrap_does_not_make_the_sandbox_root_again(
    runtime: ProcessRuntime, setuid_bwrap: Path, workspace: Path
) -> None:
    """A distribution's setuid-root bwrap exec'd as the sandbox uid would run as root (in its
    setuid mode, which fails here): no-new-privs keeps it the sandbox uid's."""
    require_isolation(runtime)  # this host makes sandboxes with its own bwrap
    setuid = ProcessRuntime(
        bwrap=str(setuid_bwrap), work_dir=Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    )
    assert setuid.host is not None, setuid.summary()
    run = await run_code(setuid, workspace, "import os; print(os.getuid(), os.getgroups())")
    uid, groups = run.stdout[0].split(" ", 1)
    assert is_sandbox_uid(int(uid))
    assert groups == "[]"


def test_the_launcher_is_described(runtime: ProcessRuntime) -> None:
    require_isolation(runtime)
    launcher().start_launcher()
    assert runtime.describe()["launcher"] == "running"


def test_a_launcher_that_cannot_start_refuses_tasks_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Python without ctypes (or a broken install) gets: the runtime names the launcher
    instead of blaming bwrap."""
    broken = tmp_path / "launcher_process.py"
    broken.write_text("raise SystemExit('no ctypes here')\n")
    launcher().stop()
    monkeypatch.setattr(launcher_module, "PROGRAM", broken)
    runtime = ProcessRuntime(work_dir=Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-")))
    assert runtime.host is None
    [line] = [m for m in runtime.missing if "launcher" in m]
    assert line == (
        "the sandbox launcher did not start (it exited with status 1; its error is in the "
        "server's output above)"
    )
    monkeypatch.undo()
    launcher().stop()  # the broken one is gone; the next use starts the real one


def clones_of(own: Launcher) -> list[int]:
    """Our children running the launcher's program that are not the launcher: its clones."""
    return [
        pid
        for pid, _, command in our_children()
        if b"launcher_process.py" in command and pid != own.pid
    ]


def test_a_clone_killed_while_it_waits_is_replaced_and_reaped() -> None:
    launcher().stop()  # its clones are ours too: only this test's own may be found below
    before = zombies_of_ours()
    own = Launcher()
    try:
        pid, _ = report(ChildSetup(), via=own)
        os.waitpid(pid, 0)
        time.sleep(0.1)  # the next clone, forked meanwhile
        waiting = clones_of(own)
        assert waiting
        for clone in waiting:
            os.kill(clone, signal.SIGKILL)
        while not all(clone in zombies_of_ours() for clone in waiting):  # dead, not yet reaped
            time.sleep(0.01)
        pid, lines = report(ChildSetup(uid=UID, gid=UID), via=own)
        os.waitpid(pid, 0)
        assert f"Uid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
    finally:
        own.stop()
    time.sleep(0.1)
    assert zombies_of_ours() <= before


def test_a_busy_server_with_descriptors_numbered_past_1024() -> None:
    """A server that raised its limit holds thousands of connections: the error pipe's number
    is then past what `select` can watch."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip("needs a hard descriptor limit of 2048 or more")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        pid, lines = report(ChildSetup(uid=UID, gid=UID))
        os.waitpid(pid, 0)
        assert f"Uid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
        returncode, _ = launcher().run(["/bin/true"], setup=ChildSetup())
        assert returncode == 0
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_launcher_that_stops_answering_is_replaced_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A launcher stalled (stopped, swapped out) while asked for a clone: the start waits its
    timeout, then a new launcher's clone takes the request (nothing was sent to the old one)."""
    monkeypatch.setattr(launcher_module, "START_TIMEOUT_S", 0.5)
    own = Launcher()
    stalled = None
    try:
        pid, _ = report(ChildSetup(), via=own)
        os.waitpid(pid, 0)
        stalled = own.pid
        assert stalled is not None
        os.kill(stalled, signal.SIGSTOP)
        for _ in range(2):  # the clone it had already sent, then one only a new launcher gives
            pid, lines = report(ChildSetup(uid=UID, gid=UID), via=own)
            os.waitpid(pid, 0)
            assert f"Uid:\t{UID}\t{UID}\t{UID}\t{UID}" in lines
        assert own.pid not in (None, stalled)
    finally:
        if stalled is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stalled, signal.SIGKILL)
        own.stop()


def _held_at_its_join(tmp_path: Path) -> tuple[Path, ChildSetup]:
    """A set-up whose clone stops before its exec until the test lets it: the launcher opens
    each file to join for writing, and a FIFO's open waits for a reader."""
    fifo = tmp_path / "join"
    os.mkfifo(fifo)
    return fifo, ChildSetup(joins=(str(fifo),))


def _let_through(fifo: Path) -> bytes:
    with open(fifo, "rb") as reader:  # the clone is waiting to write: this opens at once
        return reader.read()


@pytest.mark.parametrize("loop", LOOPS)
def test_the_loop_goes_on_while_a_clone_sets_up(loop: str, tmp_path: Path) -> None:
    """A clone waiting for a CPU on a busy machine (~5 ms a start in a drain) must not stop the
    loop: every other task's work waits behind it. Here the clone waits until a coroutine on
    the same loop lets it through; a start that blocked the loop would wait its whole timeout."""
    fifo, setup = _held_at_its_join(tmp_path)

    async def work() -> tuple[int, bytes, int]:
        starting = asyncio.ensure_future(
            spawn_prepared(
                lambda: Launch(["/bin/sh", "-c", "exit 3"], setup=setup),
                env={},
                cwd=Path("/"),
                on_loop=True,
            )
        )
        await asyncio.sleep(0.05)
        assert not starting.done()
        written = await asyncio.to_thread(_let_through, fifo)
        process = await starting
        return process.pid, written, await process.wait()

    pid, written, code = run_on(loop, work())
    assert (written, code) == (b"0", 3)  # it joined, then ran: ours, reaped by `wait`
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the clones given a request, as each is handed one."""
    pids: list[int] = []
    send = Launcher.send

    def recording(self: Launcher, *args: Any, **kwargs: Any) -> Launching:
        launching = send(self, *args, **kwargs)
        pids.append(launching.pid)
        return launching

    monkeypatch.setattr(Launcher, "send", recording)
    return pids


@pytest.mark.parametrize("loop", LOOPS)
def test_a_start_cancelled_before_the_exec_kills_and_reaps_the_clone(
    loop: str, tmp_path: Path, sent: list[int]
) -> None:
    _, setup = _held_at_its_join(tmp_path)
    marker = tmp_path / "ran"
    run_on(loop, asyncio.to_thread(lambda: None))  # uvloop's own descriptors, opened at first use
    before = open_fds()

    async def work() -> None:
        starting = asyncio.ensure_future(
            spawn_prepared(
                lambda: Launch(["/bin/touch", str(marker)], setup=setup),
                env={},
                cwd=Path("/"),
                on_loop=True,
            )
        )
        await asyncio.sleep(0.05)  # the clone has the request and waits at the FIFO
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    run_on(loop, work())
    assert len(sent) == 1
    assert sent[0] not in {pid for pid, _, _ in our_children()}  # killed and reaped
    assert not marker.exists()
    assert open_fds() == before


@pytest.mark.parametrize("loop", LOOPS)
def test_a_start_cancelled_after_the_exec_takes_what_it_started_along(
    loop: str, tmp_path: Path
) -> None:
    """The clone exec'd and its program started another process before the loop came round
    to the pipe's end: the cancellation kills its whole session, as a worker thread's does."""
    mark = f"31.{os.getpid()}"
    argv = ["/bin/sh", "-c", f"sleep {mark} & exec sleep 30"]

    async def work() -> None:
        starting = asyncio.ensure_future(
            spawn_prepared(
                lambda: Launch(argv, setup=ChildSetup()),
                env={},
                cwd=Path("/"),
                on_loop=True,
            )
        )
        await asyncio.sleep(0)  # it awaits the exec
        time.sleep(0.3)  # noqa: ASYNC251 - a busy loop: the program runs and starts its child
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    run_on(loop, work())
    time.sleep(0.1)
    left = [
        entry.name
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _cmdline(entry) == f"sleep\0{mark}\0".encode()
    ]
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    assert not left


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_launch_is_waited_for_once(tmp_path: Path) -> None:
    """A second wait would read, close and act on whatever now holds the pipe's number."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        launching = launcher().send(
            ["/bin/true"], env={}, cwd="/", stdio=(devnull,) * 3, setup=ChildSetup()
        )
        pid = run_on("asyncio", launching.started())
        other_read, other_write = os.pipe()  # may take the pipe's old number
        try:
            with pytest.raises(RuntimeError, match="once"):
                run_on("asyncio", launching.started())
            with pytest.raises(RuntimeError, match="once"):
                launching.wait()
            os.write(other_write, b"untouched")
            assert os.read(other_read, 16) == b"untouched"
        finally:
            os.close(other_read)
            os.close(other_write)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(devnull)


def test_a_failure_before_the_exec_is_raised_where_the_start_is_awaited(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    setup = ChildSetup(joins=(str(tmp_path / "no-such-cgroup" / "tasks"),))
    with pytest.raises(OSError, match=r"joining .*/no-such-cgroup/tasks"):
        run_on(
            "asyncio",
            spawn_prepared(
                lambda: Launch(["/bin/touch", str(marker)], setup=setup),
                env={},
                cwd=Path("/"),
                on_loop=True,
            ),
        )
    assert not marker.exists()
    time.sleep(0.05)
    assert not {pid for pid, state, cmd in our_children() if b"touch" in cmd}
