"""The bubblewrap command line: a read-only view of the host's system dirs and nothing else.

Inside: own pid, net, mount, ipc, uts and user namespaces (and no further user namespaces unless
the task type allows them); `/usr` and the library dirs read-only; a curated `/etc` (synthetic
passwd, group and hosts, copied in from memory); fresh `/proc`; a read-only `/dev` with only the
usual nodes; size-capped `/tmp` and `/dev/shm`; the input read-only, the output dir and events
file writable; secrets as read-only files copied by bwrap from memory file descriptors (never
written to the host's disk); the root remounted read-only; the seccomp filter (seccomp.py). The
network namespace always has only `lo`: a task with network reaches the platform's egress proxy
on 127.0.0.1:3128 there, and nothing else. Neither the environment nor the options are on the
command line (it shows in `ps`, and inside as `/proc/1/cmdline`): the launcher passes the
environment, and the options go in through a memory file (`--args FD`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT_PATH = "/saassy/input.json"
OUTPUT_PATH = "/saassy/output"
EVENTS_PATH = "/saassy/events.jsonl"
SECRETS_PATH = "/saassy/secrets"
PROGRAMS_PATH = "/saassy/programs"
SANDBOX_TMP = "/tmp"  # noqa: S108  (the sandbox's own size-capped tmpfs)
SANDBOX_SHM = "/dev/shm"  # noqa: S108  (size-capped like /tmp)
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/python3",
    "/etc/ssl",
)
PASSWD = "sandbox:x:{uid}:{gid}:sandbox:/tmp:/usr/sbin/nologin\n"  # noqa: S105
GROUP = "sandbox:x:{gid}:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"


def etc_files(*, uid: int, gid: int) -> dict[str, bytes]:
    """The synthetic /etc files of a sandbox running as uid:gid (bwrap copies them in)."""
    return {
        "/etc/passwd": PASSWD.format(uid=uid, gid=gid).encode(),
        "/etc/group": GROUP.format(gid=gid).encode(),
        "/etc/hosts": HOSTS.encode(),
    }


@functools.cache
def system_binds() -> tuple[str, ...]:
    """Bind the host's system dirs read-only, keeping merged-/usr symlinks as symlinks.

    Looked up once per process: the host's layout does not change under a running platform.
    """
    args = ["--ro-bind", "/usr", "/usr"]
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            args += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            args += ["--ro-bind", directory, directory]
    python_etc = [str(p) for p in sorted(Path("/etc").glob("python3.*"))]
    for path in (*ETC_FILES, *python_etc):
        args += ["--ro-bind-try", path, path]
    return tuple(args)


def program_binds(argv: tuple[str, ...], extra: tuple[Path, ...]) -> dict[str, str]:
    """Host path -> path inside, read-only, of what the program needs: `extra` (dirs the
    operator names) at their own paths, and argv's absolute files outside system dirs and outside
    `extra` under PROGRAMS_PATH, so that their host paths are not in the sandbox's command lines
    (only such a file is bound, never its dir, so it sees no sibling there either way)."""
    system = ("/usr/", "/bin/", "/sbin/", "/lib", "/etc/", "/proc/", "/dev/", "/saassy/")
    binds = {str(path): str(path) for path in extra}
    dirs = tuple(f"{str(path).rstrip('/')}/" for path in extra)
    for arg in argv:
        if arg in binds or arg.startswith(dirs):
            continue
        if arg.startswith("/") and not arg.startswith(system) and os.path.isfile(arg):
            binds[arg] = f"{PROGRAMS_PATH}/{len(binds)}/{os.path.basename(arg)}"
    return binds


def argv_inside(argv: tuple[str, ...], binds: Mapping[str, str]) -> tuple[str, ...]:
    """The program's argv with each bound file named by its path inside."""
    return tuple(binds.get(arg, arg) for arg in argv)


@dataclass(frozen=True)
class SandboxFiles:
    """Host paths bound into a sandbox, and how /tmp and /dev/shm are made.

    `tmp_dir` and `shm_dir`, when set, are dirs on the work dir's own tmpfs, so everything the
    sandbox writes shares one size and inode cap; else bwrap makes a tmpfs of `tmp_bytes` for
    each (a platform that may not mount).
    """

    input_file: Path
    output_dir: Path
    events_file: Path
    tmp_bytes: int
    tmp_dir: Path | None = None
    shm_dir: Path | None = None


def bwrap_options(
    files: SandboxFiles,
    *,
    read_only_paths: Mapping[str, str] | None = None,
    file_fds: Mapping[str, int] | None = None,
    secret_fds: Mapping[str, int] | None = None,
    seccomp_fd: int | None = None,
    disable_userns: bool = True,
    info_fd: int | None = None,
    block_fd: int | None = None,
    setenv: Mapping[str, str] | None = None,
) -> list[str]:
    """Every bwrap option of a sandbox (what goes before `--` and the program's argv).

    `setenv` is set by bwrap for the program only, after bwrap has read its own locale: the
    launch chain runs without the locale variables, so no step of it loads the locale's files.

    `info_fd` and `block_fd` hold the sandbox before it runs anything: bwrap writes its child's
    pid to the first and waits for a byte on the second, so the platform can prepare the
    sandbox's namespaces (a proxy socket, rlimits) first.
    """
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if disable_userns:  # behind the seccomp filter's own refusal
        args += ["--unshare-user", "--disable-userns"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    if block_fd is not None:
        args += ["--block-fd", str(block_fd)]
    for name, value in (setenv or {}).items():
        args += ["--setenv", name, value]
    args += system_binds()
    for target, fd in (file_fds or {}).items():
        args += ["--perms", "0444", "--ro-bind-data", str(fd), target]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for directory, target in ((files.tmp_dir, SANDBOX_TMP), (files.shm_dir, SANDBOX_SHM)):
        if directory is not None:
            args += ["--bind", str(directory), target]
        else:
            args += ["--size", str(files.tmp_bytes), "--tmpfs", target]
    args += ["--remount-ro", "/dev"]  # only the usual nodes; /dev/shm and /dev/pts stay writable
    args += ["--ro-bind", str(files.input_file), INPUT_PATH]
    args += ["--bind", str(files.output_dir), OUTPUT_PATH]
    args += ["--bind", str(files.events_file), EVENTS_PATH]
    for name, fd in (secret_fds or {}).items():
        args += ["--perms", "0400", "--ro-bind-data", str(fd), f"{SECRETS_PATH}/{name}"]
    for path, inside in (read_only_paths or {}).items():  # bwrap, as the sandbox uid, reads them
        args += ["--ro-bind", path, inside]
    args += ["--remount-ro", "/", "--chdir", SANDBOX_TMP]
    return args


def bwrap_argv(bwrap: str, argv: tuple[str, ...], files: SandboxFiles, **options: Any) -> list[str]:
    """The full `bwrap ... -- argv` command, every option on the command line."""
    return [bwrap, *bwrap_options(files, **options), "--", *argv]


def options_file(options: list[str]) -> bytes:
    """`options` as bwrap's `--args FD` reads them: NUL-terminated, so no host path the
    options name shows in the command line of the sandbox's first process."""
    return b"".join(os.fsencode(option) + b"\0" for option in options)
