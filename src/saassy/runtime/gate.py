"""The docker runtime's gate: a container's program runs only once the platform lets it.

Two things must happen between a container's start and its program's first instruction: the
egress proxy's socket must exist in the container's network namespace (which exists only once
the container runs), and secrets asked for as environment variables must reach the program
without passing through dockerd (which keeps a container's environment in its config on the
host's disk, shown by `docker inspect`). So a gated container's process is the image's
`/bin/sh` running `GATE_SCRIPT` in front of the program (the image's ENTRYPOINT + CMD, or the
task type's command), reading from a FIFO the platform made in the sandbox's staging tmpfs and
binds read-only at `/saassy/gate`:

1. the platform makes the FIFO and holds it open read-write (so the shell's open never blocks
   and what is written waits in the pipe whether or not the shell has opened it yet);
2. starts the container: the shell opens the FIFO and blocks on its first read;
3. opens the proxy's socket inside the namespace (netns.py) and attaches the task type's
   allow-list to it, exactly as the process runtime does for a held bwrap;
4. writes the go message: each secret as `export NAME='value'` (single quotes, a quote written
   as `'\\''`), every line prefixed with `+`, then a line `.`. The shell evaluates the exports
   and `exec`s the program, so pid 1 (docker's init) is followed by the program itself.

If the platform fails in between, it kills the container; if it dies, its end of the FIFO
closes, the shell reads end-of-file without the `.` line and exits 125 without running the
program (a platform that hangs leaves it blocked until the container's deadline, when any
sweep kills it). The values go through a pipe, never a file: no removal is needed, and nothing
of them is on the host's disk, in the container's config, or in the image's layers.

Why not the alternatives: the suggested secrets *file* sourced by the gate would sit in the
staging dir (the host's disk when the platform may not mount) and need removing once read, by
a program that may not write there; a helper binary bound in would have to match the image's
CPU and libc; `docker exec` after start runs a second process beside the first, not in front of
it. The cost is that gated images need a working `/bin/sh` (checked at start-up, `shell_probe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from docker import DockerClient
from docker.errors import APIError, DockerException
from docker.types import LogConfig

from saassy.runtime.identity import Identity

GATE_PATH = "/saassy/gate"  # inside the container
NO_GO_EXIT = 125  # the gate's own: its FIFO ended without the platform's go
OPEN_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 30
PIPE_BYTES = 64 * 1024  # a pipe's default capacity
# Its variables carry a prefix no secret may have (the catalog refuses SAASSY_* in any case)
# and no task type's environment sets: none of them changes what the program sees.
GATE_SCRIPT = """saassy_fifo=$1; shift; saassy_exports=; saassy_go=
while IFS= read -r saassy_line; do
  case $saassy_line in
    +*) saassy_exports="$saassy_exports${saassy_line#?}
";;
    .) saassy_go=1; break;;
    *) break;;
  esac
done < "$saassy_fifo"
[ "$saassy_go" = 1 ] || exit 125
eval "$saassy_exports"
exec "$@"
"""


def gate_argv(program: Sequence[str], fifo: str = GATE_PATH) -> list[str]:
    """The container's process: the gate in front of `program`."""
    return ["/bin/sh", "-c", GATE_SCRIPT, "saassy-gate", fifo, *program]


def go_message(exports: Mapping[str, str]) -> bytes:
    """What lets the gate through: the exports (names are the catalog's `[A-Za-z_]\\w*`)."""
    lines = []
    for name, value in exports.items():
        quoted = "'" + value.replace("'", "'\\''") + "'"
        lines += [f"+{line}" for line in f"export {name}={quoted}".split("\n")]
    return "\n".join([*lines, ".", ""]).encode()


class GateNotRead(Exception):
    """The container took no go message: its shell ended or hung before reading it."""


async def _write_all(fd: int, message: memoryview) -> None:
    loop = asyncio.get_running_loop()
    while message:
        try:
            message = message[os.write(fd, message) :]
        except BlockingIOError:
            writable = loop.create_future()
            loop.add_writer(fd, _settle, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Gate:
    """The platform's end of one container's gate FIFO."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def make(self, owner: Identity | None) -> None:
        """The FIFO, readable by the sandbox's uid only (its bind is read-only: no chmod)."""
        os.mkfifo(self.path, 0o400)
        if owner is not None:
            os.chown(self.path, owner.uid, owner.gid)
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    async def open(self, exports: Mapping[str, str]) -> None:
        """Let the program run, with `exports` in its environment."""
        assert self._fd is not None, "the gate was never made"
        fd, message = self._fd, memoryview(go_message(exports))
        if len(message) > PIPE_BYTES:
            with contextlib.suppress(OSError):  # a larger pipe: the message fits in one write
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, len(message))
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):  # a full pipe nobody reads: it died
                await _write_all(fd, message)
        except TimeoutError:
            raise GateNotRead(f"nothing read the gate in {OPEN_TIMEOUT_S:.0f} s") from None

    def close(self) -> None:
        """Drop our end (kept until the sandbox ends: the shell may not have opened it yet)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def shell_probe(client: DockerClient, image: str, labels: Mapping[str, str]) -> str | None:
    """None when `image` runs the gate (its `/bin/sh` starts it, and it refuses to go on without
    the platform's word), else why not, in a few words. A one-off container, closed as a
    sandbox is; `labels` let a sweep find it should this process die meanwhile. dockerd's own
    failures raise (`DockerException`): they say nothing about the image."""
    container = client.api.create_container(
        image,
        entrypoint=gate_argv([], fifo="/dev/null"),
        command=[],
        user="65534:65534",
        labels=dict(labels),
        network_disabled=True,
        host_config=client.api.create_host_config(
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit="32m",
            pids_limit=16,
            log_config=LogConfig(type="none"),
        ),
    )["Id"]
    try:
        try:
            client.api.start(container)
        except APIError as exc:
            said = str(exc.explanation or exc)
            if "/bin/sh" in said and ("no such file" in said or "not found" in said):
                return "it has no /bin/sh"
            return f"/bin/sh does not start in it: {said.splitlines()[0][:200]}"
        status = client.api.wait(container, timeout=PROBE_TIMEOUT_S).get("StatusCode")
        if status != NO_GO_EXIT:
            return f"its /bin/sh does not run the gate (exit {status}, expected {NO_GO_EXIT})"
        return None
    finally:
        with contextlib.suppress(DockerException):
            client.api.remove_container(container, force=True)
