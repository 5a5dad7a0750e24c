"""The bubblewrap command line: a read-only view of the host's system dirs and nothing else.

Inside: own pid, net, mount, ipc, uts and user namespaces; `/usr` and the library dirs read-only;
a curated `/etc` (synthetic passwd, group and hosts, copied in from memory); fresh `/proc` and
`/dev`; a size-capped `/tmp`; the input read-only, the output dir and events file writable;
secrets as read-only files copied by bwrap from memory file descriptors (never written to the
host's disk); the root remounted read-only. The network namespace always has only `lo`: a task
with network reaches the platform's egress proxy on 127.0.0.1:3128 there, and nothing else. The
environment is not on this command line (it would show in `ps`): the launcher passes it, and
bwrap hands it to the program unchanged.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

INPUT_PATH = "/saassy/input.json"
OUTPUT_PATH = "/saassy/output"
EVENTS_PATH = "/saassy/events.jsonl"
SECRETS_PATH = "/saassy/secrets"
SANDBOX_TMP = "/tmp"  # noqa: S108  (the sandbox's own size-capped tmpfs)
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


def program_paths(argv: tuple[str, ...], extra: tuple[Path, ...]) -> list[str]:
    """Host paths to show read-only: `extra`, plus argv's absolute files outside system dirs."""
    system = ("/usr/", "/bin/", "/sbin/", "/lib", "/etc/", "/proc/", "/dev/", "/saassy/")
    wanted = [str(path) for path in extra]
    for arg in argv:
        if arg.startswith("/") and not arg.startswith(system) and os.path.isfile(arg):
            wanted.append(arg)
    return list(dict.fromkeys(wanted))


def bwrap_argv(
    bwrap: str,
    argv: tuple[str, ...],
    *,
    input_file: Path,
    output_dir: Path,
    events_file: Path,
    tmp_bytes: int,
    read_only_paths: list[str] | None = None,
    file_fds: Mapping[str, int] | None = None,
    secret_fds: Mapping[str, int] | None = None,
    info_fd: int | None = None,
    block_fd: int | None = None,
) -> list[str]:
    """The full `bwrap ... -- argv` command.

    `info_fd` and `block_fd` hold the sandbox before it runs anything: bwrap writes its child's
    pid to the first and waits for a byte on the second, so the platform can prepare the
    sandbox's namespaces (a proxy socket, rlimits) first.
    """
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    if block_fd is not None:
        args += ["--block-fd", str(block_fd)]
    args += system_binds()
    for target, fd in (file_fds or {}).items():
        args += ["--perms", "0444", "--ro-bind-data", str(fd), target]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(tmp_bytes), "--tmpfs", SANDBOX_TMP]
    args += ["--ro-bind", str(input_file), INPUT_PATH]
    args += ["--bind", str(output_dir), OUTPUT_PATH]
    args += ["--bind", str(events_file), EVENTS_PATH]
    for name, fd in (secret_fds or {}).items():
        args += ["--perms", "0400", "--ro-bind-data", str(fd), f"{SECRETS_PATH}/{name}"]
    for path in read_only_paths or []:  # bwrap runs as the sandbox uid: it must reach them
        args += ["--ro-bind", path, path]
    args += ["--remount-ro", "/", "--chdir", SANDBOX_TMP, "--", *argv]
    return args
