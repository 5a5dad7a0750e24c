"""The file descriptors a bwrap launch hands over: files, secrets, options and filter in memory,
and the hold.

Secrets, and the sandbox's own /etc/passwd and group, go in as memory files (`memfd`) that bwrap
copies into the sandbox (`--ro-bind-data`): they never touch a disk. A held launch gets two
pipes: bwrap reports its child's pid on one (`--info-fd`) and waits for a byte on the other
(`--block-fd`), so the platform can open the proxy socket in the sandbox's network before the
program's first instruction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

INFO_TIMEOUT_S = 10.0
MAX_INFO_BYTES = 64 * 1024


class LaunchFailed(Exception):
    """bwrap ended (or said nothing) before its sandbox was ready."""


def memory_file(value: bytes, name: str = "saassy-secret") -> int:
    """A close-on-exec memory file holding `value`, positioned at its start."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(value)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@dataclass
class LaunchFds:
    files: dict[str, int] = field(default_factory=dict)  # path inside -> memfd (read-only)
    secrets: dict[str, int] = field(default_factory=dict)  # name -> memfd, same number inside
    memory: list[int] = field(default_factory=list)  # memfds bwrap reads: options, filter
    info: tuple[int, int] | None = None  # (read, write)
    block: tuple[int, int] | None = None  # (read, write)

    @classmethod
    def open(
        cls,
        secrets: Mapping[str, SecretStr],
        *,
        held: bool,
        files: Mapping[str, bytes] | None = None,
    ) -> LaunchFds:
        fds = cls()
        try:
            for path, content in (files or {}).items():
                fds.files[path] = memory_file(content)
            for name, secret in secrets.items():
                fds.secrets[name] = memory_file(secret.get_secret_value().encode())
            if held:
                fds.info = os.pipe()
                fds.block = os.pipe()
        except BaseException:
            fds.close_all()
            raise
        return fds

    def add_memory(self, content: bytes) -> int:
        """A memory file holding `content`, for the child to read (bwrap's options, the filter)."""
        fd = memory_file(content)
        self.memory.append(fd)
        return fd

    @property
    def held(self) -> bool:
        return self.info is not None

    @property
    def info_fd(self) -> int | None:
        return self.info[1] if self.info else None

    @property
    def block_fd(self) -> int | None:
        return self.block[0] if self.block else None

    @property
    def for_child(self) -> tuple[int, ...]:
        ends = [self.info_fd, self.block_fd]
        memory = (*self.files.values(), *self.secrets.values(), *self.memory)
        return (*memory, *(fd for fd in ends if fd is not None))

    def close_child_ends(self) -> None:
        """After the spawn: the child has its copies; ours would keep the pipes open."""
        for fd in self.for_child:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.files.clear()
        self.secrets.clear()
        self.memory.clear()
        if self.info is not None:
            self.info = (self.info[0], -1)
        if self.block is not None:
            self.block = (-1, self.block[1])

    def close_all(self) -> None:
        memory = [*self.files.values(), *self.secrets.values(), *self.memory]
        for fd in [*memory, *(self.info or ()), *(self.block or ())]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.files.clear()
        self.secrets.clear()
        self.memory.clear()
        self.info = self.block = None

    async def child_pid(self) -> int:
        """The sandbox's first process as the host sees it, once bwrap has made its namespaces."""
        assert self.info is not None
        fd = self.info[0]
        loop = asyncio.get_running_loop()
        received = bytearray()
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            received.extend(chunk)
            ended = not chunk or b"}" in received or len(received) > MAX_INFO_BYTES
            if ended and not done.done():
                done.set_result(None)

        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(INFO_TIMEOUT_S):
                await done
        except TimeoutError:
            raise LaunchFailed("bwrap did not report its sandbox in time") from None
        finally:
            loop.remove_reader(fd)
        try:
            return int(json.loads(bytes(received))["child-pid"])
        except (ValueError, KeyError, TypeError):
            raise LaunchFailed("bwrap ended before its sandbox was ready") from None

    def release(self) -> None:
        """Let the held sandbox run its program."""
        assert self.block is not None
        os.write(self.block[1], b"1")
        self.close_all()
