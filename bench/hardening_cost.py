"""What the sandbox's hardening costs a start: bwrap with and without it, in interleaved pairs.

"Without" is the runtime's command line less the hardening (no seccomp filter, no
--disable-userns, /dev writable, no /dev/shm cap, options on the command line); "with" is what the
runtime passes now. Both run as the runtime runs them (through its launcher, which drops root to
a sandbox uid, then execs bwrap), and what is compared is the CPU time of the launched tree,
which other load on the host barely moves (wall time on a busy 2-core host swings by several
milliseconds either way).

    .venv/bin/python -m bench.hardening_cost [bwrap path] [pairs]
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from saassy.runtime import bwrap
from saassy.runtime.identity import FIRST_UID
from saassy.runtime.launch import LaunchFds
from saassy.runtime.launcher import ChildSetup, launcher
from saassy.runtime.seccomp import sandbox_filter
from saassy.runtime.syscalls import native_arch

# As the runtime launches a sandbox: as its uid when we are root.
SETUP = ChildSetup(uid=FIRST_UID, gid=FIRST_UID) if os.geteuid() == 0 else ChildSetup()
Launch = Callable[[LaunchFds], list[str]]


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _files(root: Path) -> bwrap.SandboxFiles:
    return bwrap.SandboxFiles(root / "input.json", root / "output", root / "events.jsonl", 16 << 20)


def without_hardening(binary: str, root: Path) -> Launch:
    def argv(fds: LaunchFds) -> list[str]:
        files = _files(root)
        args = [binary, "--unshare-all", "--die-with-parent", "--new-session"]
        args += [*bwrap.system_binds(), "--proc", "/proc", "--dev", "/dev"]
        for target, fd in fds.files.items():
            args += ["--perms", "0444", "--ro-bind-data", str(fd), target]
        args += ["--size", str(files.tmp_bytes), "--tmpfs", bwrap.SANDBOX_TMP]
        args += ["--ro-bind", str(files.input_file), bwrap.INPUT_PATH]
        args += ["--bind", str(files.output_dir), bwrap.OUTPUT_PATH]
        args += ["--bind", str(files.events_file), bwrap.EVENTS_PATH]
        return [*args, "--remount-ro", "/", "--chdir", bwrap.SANDBOX_TMP, "--", "/bin/true"]

    return argv


def with_hardening(binary: str, root: Path) -> Launch:
    arch = native_arch()
    assert arch is not None, "no seccomp filter for this CPU"

    def argv(fds: LaunchFds) -> list[str]:
        seccomp = fds.add_memory(sandbox_filter(arch))
        options = bwrap.bwrap_options(_files(root), file_fds=fds.files, seccomp_fd=seccomp)
        listed = fds.add_memory(bwrap.options_file(options))
        return [binary, "--args", str(listed), "--", "/bin/true"]

    return argv


def cpu_of(launch: Launch) -> float:
    fds = LaunchFds.open({}, held=False, files=bwrap.etc_files(uid=FIRST_UID, gid=FIRST_UID))
    before = _children_cpu()
    try:
        returncode, said = launcher().run(launch(fds), setup=SETUP, pass_fds=fds.for_child)
        if returncode != 0:
            raise RuntimeError(f"bwrap failed: {said}")
    finally:
        fds.close_all()
    return _children_cpu() - before


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/bwrap"
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    root = Path(tempfile.mkdtemp(prefix="saassy-bench-hardening-"))
    root.chmod(0o755)
    (root / "input.json").write_text("{}")
    (root / "output").mkdir(mode=0o777)
    (root / "events.jsonl").touch(mode=0o666)
    plain, hardened = without_hardening(binary, root), with_hardening(binary, root)
    differences = []
    for _ in range(pairs):
        differences.append(cpu_of(hardened) - cpu_of(plain))
    differences.sort()
    quartile = len(differences) // 4
    print(
        f"{binary}: hardening adds {statistics.median(differences) * 1000:+.2f} ms of CPU per "
        f"start (median of {pairs} pairs; quartiles {differences[quartile] * 1000:+.2f}, "
        f"{differences[-quartile - 1] * 1000:+.2f} ms)"
    )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
