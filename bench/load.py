"""A closed-loop HTTP load generator: N keep-alive connections each sending one request, waiting
for its answer, sending the next, for a fixed time.

`wrk` (apt `wrk`, C, one thread) when it is on PATH: it costs the machine little, so on two
cores the server under test keeps a whole one. Otherwise the same loop in Python over raw
asyncio streams (about 30 µs of CPU per request here: the numbers of the two are not to be
mixed). Either way every server of a comparison is driven by the same generator, sending the
same bytes, and the result says which generator it was.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlsplit

GENERATORS = ("auto", "wrk", "python")
WRK_TIMEOUT_S = 10


@dataclass(frozen=True)
class Load:
    """What one run answered: every request is counted once, whatever its status."""

    generator: str
    answered: int  # responses received, of any status
    failed: int  # responses with a status of 400 or more, and socket errors or timeouts
    duration_s: float
    p50_ms: float
    p99_ms: float
    generator_cpu_s: float

    @property
    def per_s(self) -> float:
        return self.answered / self.duration_s


@dataclass(frozen=True)
class Request:
    url: str  # the server's base, http://host:port
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


def pick_generator(choice: str) -> str:
    if choice not in GENERATORS:
        raise ValueError(f"generator {choice!r}: one of {', '.join(GENERATORS)}")
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not on PATH (apt-get install wrk), or use --generator python")
    return choice


async def run_load(request: Request, connections: int, duration_s: float, generator: str) -> Load:
    """Drive `request` from `connections` connections for `duration_s` seconds."""
    if pick_generator(generator) == "wrk":
        return await _wrk(request, connections, duration_s)
    return await _python(request, connections, duration_s)


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable ASCII is a valid Lua string literal


# Only `done` runs Lua: a per-request `response` hook would slow wrk down several times.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"answered": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


async def _wrk(request: Request, connections: int, duration_s: float) -> Load:
    lines = [
        f"wrk.method = {_lua_string(request.method)}",
        f"wrk.body = {_lua_string(request.body.decode())}",
        *(
            f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
            for name, value in request.headers.items()
        ),
        _DONE,
    ]
    with TemporaryDirectory(prefix="saassy-wrk-") as scratch:
        script = Path(scratch) / "request.lua"
        script.write_text("\n".join(lines))
        before = _children_cpu_s()
        process = await asyncio.create_subprocess_exec(
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",  # whole seconds ("0.5s" is refused); the rate is from wrk's own clock
            f"{max(1, math.ceil(duration_s))}s",
            "--timeout",
            f"{WRK_TIMEOUT_S}s",
            "--script",
            str(script),
            request.url + request.path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        cpu_s = _children_cpu_s() - before
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited {process.returncode}: {err.decode()[-500:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    return Load(
        generator="wrk",
        answered=summary["answered"],
        failed=summary["status_errors"] + summary["socket_errors"],
        duration_s=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        generator_cpu_s=cpu_s,
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _python(request: Request, connections: int, duration_s: float) -> Load:
    url = urlsplit(request.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {url.netloc}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    head.append(f"Content-Length: {len(request.body)}")
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + request.body
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    socket_errors = 0

    async def one_connection(stop_at: float) -> None:
        nonlocal socket_errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(wire)
                answer = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(content_length(answer))
                latencies.append(time.perf_counter() - started)
                statuses[int(answer[9:12])] += 1
        except (OSError, asyncio.IncompleteReadError):
            socket_errors += 1
        finally:
            writer.close()

    cpu = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(one_connection(began + duration_s) for _ in range(connections)))
    duration = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]
    return Load(
        generator="python",
        answered=len(latencies),
        failed=sum(n for status, n in statuses.items() if status >= 400) + socket_errors,
        duration_s=duration,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        generator_cpu_s=time.process_time() - cpu,
    )


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
