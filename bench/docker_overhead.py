"""The docker runtime against raw `docker run`: a trivial program in saassy/base:test.

`python -m bench.docker_overhead [--quick] [--repetitions 10] [--image saassy/base:test]`

Three ways to run `true` in the image, interleaved (each repetition runs all three, in a
rotating order, so drift on the host hits them alike):

- the runtime: `DockerRuntime.start`, `wait` and `cleanup` of a sandbox with the no-op task
  type's limits, as the engine calls them (its staging tmpfs, cgroup, attach, start, wait,
  measure, remove);
- the floor: the same container through the docker SDK from this process, as `docker run
  --rm` makes it (create with the same limits, network none, read-only root, no capabilities,
  init; start; wait; remove), without the runtime's own work: no staging dir, no cgroup of
  ours, no attach, no measurement;
- the CLI: `docker run --rm --network none ...` with the same options, as a person would run it.

The ratio is the runtime over the SDK floor: both talk to dockerd over the same socket from a
warm process, so the difference is the runtime's own work. The CLI also pays for starting the
`docker` binary and its own API handshakes, which would flatter the runtime; it is shown beside.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from docker.types import LogConfig
from rich.console import Console

from bench.client import BenchError
from bench.report import Row, print_rows, write_results
from saassy.runtime.base import Limits, SandboxSpec
from saassy.runtime.docker import DockerRuntime

RESULTS = Path(__file__).parent / "results"
IMAGE = "saassy/base:test"
NOOP_LIMITS = Limits(memory_mb=128, cpus=0.5, pids=32, disk_mb=16, timeout_s=30)
TITLE = "Docker runtime against raw docker run: `true` in saassy/base:test"
ROWS = [
    Row("docker_runtime_ms", "DockerRuntime start+wait+cleanup, median", "ms"),
    Row("docker_sdk_run_ms", "docker run --rm via the SDK (floor), median", "ms"),
    Row("docker_cli_run_ms", "docker run --rm, the CLI, median", "ms"),
    Row("docker_overhead_ratio", "Runtime / SDK floor, median of pairs", "x", at_most=1.1),
    Row("docker_overhead_ratio_min", "... lowest pair", "x"),
    Row("docker_overhead_ratio_max", "... highest pair", "x"),
    Row("docker_runtime_vs_cli", "Runtime / CLI, median of pairs", "x"),
]


def cli_argv(image: str, limits: Limits) -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        raise BenchError("no docker CLI on PATH")
    return [
        docker, "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--memory", f"{limits.memory_mb}m",
        "--memory-swap", f"{limits.memory_mb}m", "--cpus", str(limits.cpus),
        "--pids-limit", str(limits.pids), "--init", "--user", "65534:65534",
        "--log-driver", "none", image, "true",
    ]  # fmt: skip


class Runs:
    def __init__(self, runtime: DockerRuntime, image: str, root: Path) -> None:
        self.runtime, self.image, self.root = runtime, image, root
        (root / "input.json").write_text("{}")
        (root / "output").mkdir()
        (root / "events.jsonl").touch()
        self.count = itertools.count()
        self.cli = cli_argv(image, NOOP_LIMITS)

    async def runtime_once(self) -> float:
        spec = SandboxSpec(
            name=f"bench-docker-{next(self.count)}",
            argv=("true",),
            image=self.image,
            input_file=self.root / "input.json",
            output_dir=self.root / "output",
            events_file=self.root / "events.jsonl",
            limits=NOOP_LIMITS,
        )
        began = time.perf_counter()
        handle = await self.runtime.start(spec)
        try:
            exit_ = await handle.wait()
        finally:
            await handle.cleanup()
        took = time.perf_counter() - began
        if not exit_.succeeded:
            raise BenchError(f"the docker runtime's `true` ended {exit_}")
        return took

    def sdk_once(self) -> float:
        client = self.runtime.host.client
        began = time.perf_counter()
        memory = f"{NOOP_LIMITS.memory_mb}m"
        container = client.containers.create(
            self.image,
            ["true"],
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(NOOP_LIMITS.cpus * 1e9),
            pids_limit=NOOP_LIMITS.pids,
            init=True,
            user="65534:65534",
            log_config=LogConfig(type="none"),
        )
        try:
            container.start()
            code = container.wait()["StatusCode"]
        finally:
            container.remove(force=True)
        took = time.perf_counter() - began
        if code != 0:
            raise BenchError(f"`true` through the SDK exited {code}")
        return took

    def cli_once(self) -> float:
        began = time.perf_counter()
        done = subprocess.run(self.cli, capture_output=True, check=False)  # noqa: S603
        took = time.perf_counter() - began
        if done.returncode != 0:
            raise BenchError(f"docker run failed: {done.stderr.decode(errors='replace')}")
        return took


async def _measure(runs: Runs, repetitions: int) -> dict[str, list[float]]:
    ways: dict[str, Callable[[], Awaitable[float]]] = {
        "runtime": runs.runtime_once,
        "sdk": lambda: asyncio.to_thread(runs.sdk_once),
        "cli": lambda: asyncio.to_thread(runs.cli_once),
    }
    series: dict[str, list[float]] = {name: [] for name in ways}
    for name in ways:  # one of each to warm dockerd's and our caches
        await ways[name]()
    names = list(ways)
    for i in range(repetitions):
        for name in names[i % 3 :] + names[: i % 3]:  # rotate who goes first
            series[name].append(await ways[name]())
    return series


def run_docker_overhead(repetitions: int, image: str = IMAGE) -> dict[str, float]:
    if repetitions < 3:
        raise ValueError("at least 3 repetitions: a median and a spread need them")
    root = Path(tempfile.mkdtemp(prefix="saassy-bench-docker-"))
    runtime = DockerRuntime(instance="bench")
    try:
        runtime.require_images({"noop": image})
        series = asyncio.run(_measure(Runs(runtime, image, root), repetitions))
    finally:
        runtime.close()
        shutil.rmtree(root, ignore_errors=True)
    pairs = [r / s for r, s in zip(series["runtime"], series["sdk"], strict=True)]
    versus_cli = [r / c for r, c in zip(series["runtime"], series["cli"], strict=True)]
    ms = {name: statistics.median(values) * 1000 for name, values in series.items()}
    return {
        "docker_runtime_ms": ms["runtime"],
        "docker_sdk_run_ms": ms["sdk"],
        "docker_cli_run_ms": ms["cli"],
        "docker_runtime_min_ms": min(series["runtime"]) * 1000,
        "docker_runtime_max_ms": max(series["runtime"]) * 1000,
        "docker_sdk_run_min_ms": min(series["sdk"]) * 1000,
        "docker_sdk_run_max_ms": max(series["sdk"]) * 1000,
        "docker_overhead_ratio": statistics.median(pairs),
        "docker_overhead_ratio_min": min(pairs),
        "docker_overhead_ratio_max": max(pairs),
        "docker_runtime_vs_cli": statistics.median(versus_cli),
        "docker_repetitions": float(repetitions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.docker_overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 repetitions.")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--out", type=Path, default=RESULTS / "docker-overhead.json")
    args = parser.parse_args()
    repetitions = args.repetitions or (3 if args.quick else 10)
    console = Console()
    console.print(f"[bold]{TITLE}[/]: {repetitions} interleaved repetitions")
    numbers = run_docker_overhead(repetitions, args.image)
    print_rows(TITLE, ROWS, numbers, console)
    write_results(numbers, args.out)
    console.print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
