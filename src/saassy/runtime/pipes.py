"""A sandbox's stdout or stderr pipe, read on the event loop in large reads.

One read of up to 1 MiB per wake-up (the pipe is enlarged to match), so what reading costs the
server follows the bytes, not the number of writes. The reader's buffer pushes back: while it
holds more than twice its limit the pipe is not read, it fills, and the writer waits. Once the
output is no longer kept, `discard_rest()` has the rest spliced to /dev/null in the kernel:
counted, never copied into the server.

Not `loop.connect_read_pipe`: uvloop closes such a pipe twice (libuv, then the file object),
and the second close can hit a descriptor another thread has just opened under the same number
(seen: a concurrent spawn's error pipe, failing that sandbox's start).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable

READ_SIZE = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # the default /proc/sys/fs/pipe-max-size


class PipeReader(asyncio.StreamReader):
    """A StreamReader of one pipe that can be told to throw the rest of it away unread."""

    def __init__(self) -> None:
        super().__init__(limit=READ_SIZE)
        self.discarding = False
        self.discarded = 0  # bytes thrown away since `discard_rest()`

    def discard_rest(self) -> None:
        self.discarding = True


def read_into(fd: int, reader: PipeReader) -> None:
    """Feed pipe `fd` into `reader` until EOF, then close it (once)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    with contextlib.suppress(OSError):  # a smaller pipe only means more wake-ups
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    held: list[int] = [fd]  # the pipe, then /dev/null once discarding
    paused = False

    def readable() -> None:
        if not held:
            return
        try:
            if reader.discarding:
                count = _discard(held)
                reader.discarded += count
                if count:
                    return
                data = b""
            else:
                data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            reader.feed_data(data)
            return
        loop.remove_reader(fd)
        for each in held:
            os.close(each)
        held.clear()
        reader.feed_eof()

    def pause() -> None:
        nonlocal paused
        if held and not paused:
            paused = True
            loop.remove_reader(fd)

    def resume() -> None:
        nonlocal paused
        if held and paused:
            paused = False
            loop.add_reader(fd, readable)

    reader.set_transport(_PipeFlow(pause, resume))
    loop.add_reader(fd, readable)


def _discard(held: list[int]) -> int:
    """Splice what the pipe holds to /dev/null; bytes thrown away (0 at EOF)."""
    if len(held) == 1:
        held.append(os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC))
    try:
        return os.splice(held[0], held[1], READ_SIZE, flags=os.SPLICE_F_NONBLOCK)
    except BlockingIOError:
        raise
    except OSError:  # no splice here (an old kernel, a seccomp filter): read and drop instead
        return len(os.read(held[0], READ_SIZE))


class _PipeFlow(asyncio.ReadTransport):
    """What a StreamReader calls to stop and restart reading when its buffer is full."""

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        super().__init__()
        self._pause, self._resume = pause, resume
        self._reading = True

    def pause_reading(self) -> None:
        self._reading = False
        self._pause()

    def resume_reading(self) -> None:
        self._reading = True
        self._resume()

    def is_reading(self) -> bool:
        return self._reading
