"""The egress proxy against a direct connection, on loopback, side by side in one run.

`python -m bench.egress [--quick]` on its own (no sandbox needed), or as a phase of
`python -m bench`. Latency: one 1 KiB GET per connection, direct and through the proxy
alternately; the added milliseconds per connection are the paired differences. Throughput: a
10 MB download each way, alternately. Every figure is the median of several runs, with the
spread of the headline ratios across runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from rich.console import Console

from bench.client import BenchError
from bench.egress_servers import LOOPS, ORIGIN_NAME, answer_for, run_origin, run_proxy
from bench.report import Row, print_rows, write_results

SMALL = 1024
LARGE = 10 * 1024 * 1024
READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class EgressSizes:
    runs: int = 5
    requests: int = 300  # per run and per path
    downloads: int = 5  # per run and per path
    loop: str = "uvloop"  # the proxy's loop: uvicorn's choice when uvloop is installed


QUICK = EgressSizes(runs=3, requests=40, downloads=2)

ROWS = [
    Row("egress_direct_p50_ms", "1 KiB GET direct, p50", "ms"),
    Row("egress_proxy_p50_ms", "1 KiB GET via proxy, p50", "ms"),
    Row("egress_direct_p99_ms", "1 KiB GET direct, p99", "ms"),
    Row("egress_proxy_p99_ms", "1 KiB GET via proxy, p99", "ms"),
    Row("egress_latency_ratio", "Proxy / direct latency, p50", "x", at_most=1.2),
    Row("egress_latency_ratio_spread", "... spread across runs", "x"),
    Row("egress_latency_ratio_p99", "Proxy / direct latency, p99", "x"),
    Row("egress_added_ms", "Added per connection, p50", "ms", at_most=1.0),
    Row("egress_added_p99_ms", "Added per connection, p99", "ms"),
    Row("egress_direct_mb_s", "10 MB download direct", "MB/s"),
    Row("egress_proxy_mb_s", "10 MB download via proxy", "MB/s", at_least=100.0),
    Row("egress_throughput_ratio", "Proxy / direct throughput", "x", at_least=0.8),
    Row("egress_throughput_ratio_spread", "... spread across runs", "x"),
    Row("egress_metered_vs_received", "Metered bytes in / bytes received", "x"),
]


def fetch(port: int, request: bytes, buffer: bytearray) -> int:
    """Send one request on a new connection and read the answer to the end: bytes received."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        received = 0
        while count := sock.recv_into(buffer):
            received += count
    return received


@dataclass(frozen=True)
class Paths:
    origin_port: int
    proxy_port: int

    def request(self, size: int, *, proxied: bool) -> tuple[int, bytes]:
        host = f"{ORIGIN_NAME}:{self.origin_port}"
        target = f"http://{host}/bytes/{size}" if proxied else f"/bytes/{size}"
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        return (self.proxy_port if proxied else self.origin_port), request.encode()


def timed(paths: Paths, size: int, proxied: bool, buffer: bytearray) -> float:
    port, request = paths.request(size, proxied=proxied)
    started = time.perf_counter()
    received = fetch(port, request, buffer)
    elapsed = time.perf_counter() - started
    if received != len(answer_for(size)):
        how = "proxied" if proxied else "direct"
        raise BenchError(f"{how} GET of {size} bytes received {received}")
    return elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def one_run(paths: Paths, sizes: EgressSizes, buffer: bytearray) -> dict[str, float]:
    direct: list[float] = []
    proxied: list[float] = []
    for i in range(sizes.requests):  # alternate, and alternate who goes first
        order = (False, True) if i % 2 else (True, False)
        for via_proxy in order:
            (proxied if via_proxy else direct).append(timed(paths, SMALL, via_proxy, buffer))
    added = [p - d for p, d in zip(proxied, direct, strict=True)]
    direct_s = proxied_s = 0.0
    for _ in range(sizes.downloads):
        direct_s += timed(paths, LARGE, False, buffer)
        proxied_s += timed(paths, LARGE, True, buffer)
    megabytes = sizes.downloads * LARGE / 1e6
    return {
        "egress_direct_p50_ms": percentile(direct, 0.5) * 1000,
        "egress_direct_p99_ms": percentile(direct, 0.99) * 1000,
        "egress_proxy_p50_ms": percentile(proxied, 0.5) * 1000,
        "egress_proxy_p99_ms": percentile(proxied, 0.99) * 1000,
        "egress_added_ms": percentile(added, 0.5) * 1000,
        "egress_added_p99_ms": percentile(added, 0.99) * 1000,
        "egress_direct_mb_s": megabytes / direct_s,
        "egress_proxy_mb_s": megabytes / proxied_s,
    }


def combine(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians across runs; the headline ratios per run first, then their median and spread."""
    numbers = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    ratios = {
        "egress_latency_ratio": [
            r["egress_proxy_p50_ms"] / r["egress_direct_p50_ms"] for r in runs
        ],
        "egress_latency_ratio_p99": [
            r["egress_proxy_p99_ms"] / r["egress_direct_p99_ms"] for r in runs
        ],
        "egress_throughput_ratio": [r["egress_proxy_mb_s"] / r["egress_direct_mb_s"] for r in runs],
    }
    for key, values in ratios.items():
        numbers[key] = statistics.median(values)
        numbers[f"{key}_spread"] = max(values) - min(values)
    numbers["egress_runs"] = float(len(runs))
    return numbers


@contextmanager
def servers(loop: str) -> Iterator[tuple[Paths, Connection]]:
    context = multiprocessing.get_context("spawn")
    origin_pipe, origin_end = context.Pipe()
    origin = context.Process(target=run_origin, args=(origin_end, [SMALL, LARGE]), daemon=True)
    origin.start()
    proxy = None
    try:
        origin_port = _port_from(origin_pipe, "origin")
        proxy_pipe, proxy_end = context.Pipe()
        proxy = context.Process(target=run_proxy, args=(proxy_end, origin_port, loop), daemon=True)
        proxy.start()
        yield Paths(origin_port, _port_from(proxy_pipe, "proxy")), proxy_pipe
    finally:
        for process in (proxy, origin):
            if process is not None and process.is_alive():
                process.terminate()
                process.join(5)


def _port_from(pipe: Connection, what: str) -> int:
    if not pipe.poll(30):
        raise BenchError(f"the {what} process did not start")
    return int(pipe.recv())


def run_egress_numbers(sizes: EgressSizes) -> dict[str, float]:
    """Every egress number, with the proxy's own count checked against the requests made."""
    buffer = bytearray(READ_BYTES)
    with servers(sizes.loop) as (paths, proxy_pipe):
        timed(paths, SMALL, True, buffer)  # warm both processes
        timed(paths, SMALL, False, buffer)
        runs = [one_run(paths, sizes, buffer) for _ in range(sizes.runs)]
        proxy_pipe.send("stop")
        if not proxy_pipe.poll(30):
            raise BenchError("the proxy did not report its figures")
        stats = proxy_pipe.recv()
    expected = 1 + sizes.runs * (sizes.requests + sizes.downloads)
    if stats["allowed"] != expected or stats["refused"]:
        raise BenchError(f"the proxy counted {stats}, expected {expected} allowed connections")
    received = len(answer_for(SMALL)) * (1 + sizes.runs * sizes.requests) + len(
        answer_for(LARGE)
    ) * (sizes.runs * sizes.downloads)
    numbers = combine(runs)
    numbers["egress_metered_bytes_in"] = float(stats["bytes_in"])
    numbers["egress_metered_vs_received"] = stats["bytes_in"] / received
    return numbers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.egress", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 short runs (a few seconds).")
    parser.add_argument("--loop", choices=sorted(LOOPS), default=EgressSizes.loop)
    parser.add_argument("--out", type=Path, help="Write the numbers as JSON here.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = QUICK if args.quick else EgressSizes()
    sizes = EgressSizes(sizes.runs, sizes.requests, sizes.downloads, args.loop)
    numbers = run_egress_numbers(sizes)
    print_rows(f"Egress proxy vs direct, loopback ({args.loop})", ROWS, numbers, Console())
    if args.out:
        write_results(numbers, args.out)


if __name__ == "__main__":
    main()
