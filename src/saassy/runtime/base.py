"""The sandbox runtime interface: start a spec, wait, kill, stream output, read measured usage.

Shaped like Airflow's executors: a small abstract base with capability flags, so callers (the
dispatcher, `GET /api/v1/system`) can say what isolation is in force. The interface only grows
additively. A spec carries identity and limits, never code or secrets in its repr.
"""

from __future__ import annotations

import abc
import socket
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

MAX_LOG_BYTES = 8 * 1024 * 1024  # output stored per attempt by default; the rest is read, not kept


class IsolationLevel(StrEnum):
    """What the runtime can guarantee on this host, strongest first."""

    container = "container"  # docker / kubernetes
    namespaces_cgroups = "namespaces+cgroups"  # bubblewrap inside a cgroup
    namespaces = "namespaces"  # bubblewrap without writable cgroups: limits by rlimits
    rlimits = "rlimits"  # no namespaces: only where the operator opted in, never in production
    unavailable = "unavailable"  # no sandbox can be made here: tasks are refused


class SandboxRefused(Exception):
    """The runtime will not start this sandbox here; `code` says why, for the task's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True)

    memory_mb: int = Field(512, ge=16)
    cpus: float = Field(0.5, gt=0)
    pids: int = Field(256, ge=8)
    disk_mb: int = Field(256, ge=1)
    timeout_s: float = Field(60, gt=0)


class SandboxSpec(BaseModel):
    """What to run and within which limits; `secrets` never shows in repr or logs."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Identity, e.g. 'task-<id>-attempt-<n>'; names the cgroup.")
    argv: tuple[str, ...] = ()
    image: str | None = None
    input_file: Path = Field(description="Host path of the JSON input; mounted read-only.")
    output_dir: Path = Field(description="Host path the program writes results and artifacts to.")
    events_file: Path | None = None
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    secrets: Mapping[str, SecretStr] = Field(
        default_factory=dict,
        repr=False,
        description="Read-only files in $SAASSY_SECRETS (/saassy/secrets/<name>), never on disk.",
    )
    secrets_as_env: bool = Field(False, description="Also export each secret as $<name>.")
    limits: Limits = Limits()
    tenant: str | None = Field(
        None,
        description="Whom it runs for (an organization). Where the runtime has CPU weights "
        "(cgroups), a tenant's running sandboxes share one: on a busy machine a tenant with many "
        "gets no more CPU than one with a single sandbox. Kept to [A-Za-z0-9_.-] (others become "
        "'_'), so two tenants must differ in those (the engine's are organization ids).",
    )
    network: bool = Field(False, description="Egress through the platform's proxy, nothing else.")
    network_allow: tuple[str, ...] = Field((), description="Destinations; empty: any public one.")
    allow_user_namespaces: bool = Field(
        False, description="Let the program make user namespaces (a browser's own sandbox)."
    )
    max_log_bytes: int = Field(
        MAX_LOG_BYTES,
        ge=0,
        description="Output kept per attempt; past it the rest is read and thrown away, and a "
        "marker line says so.",
    )
    read_only_paths: tuple[Path, ...] = Field(
        default=(),
        description="Host files or dirs the program needs (e.g. its own code), visible read-only "
        "at the same path. Absolute files in argv outside them are bound too, read-only, under "
        "/saassy/programs, and argv names them there.",
    )


@dataclass(frozen=True)
class EgressUsage:
    """What a sandbox sent and received through the egress proxy, and its connections."""

    bytes_out: int = 0
    bytes_in: int = 0
    connections: int = 0  # opened to a destination
    refused: int = 0  # turned down: policy, address range, bad request, limits
    failed: int = 0  # allowed, but the destination did not resolve or answer


@dataclass(frozen=True)
class Usage:
    """Measured by the kernel (cgroup accounting, else rusage); egress by the platform's proxy."""

    cpu_seconds: float
    peak_memory_bytes: int
    wall_seconds: float
    egress: EgressUsage | None = None


class EgressLink(Protocol):
    """One sandbox's attachment to the egress proxy."""

    async def close(self) -> EgressUsage:
        """Stop serving the sandbox, end its connections, return what went through."""
        ...


class EgressGateway(Protocol):
    """The platform's egress proxy, as a runtime sees it."""

    async def attach(
        self,
        sandbox: str,
        allow: tuple[str, ...],
        listener: socket.socket,
        on_notice: Callable[[str], None],
    ) -> EgressLink:
        """Serve `listener` (a socket inside the sandbox's network) under the `allow` policy."""
        ...


class EndReason(StrEnum):
    exited = "exited"
    timed_out = "timed_out"
    killed = "killed"  # cancel
    out_of_memory = "out_of_memory"


@dataclass(frozen=True)
class Exit:
    reason: EndReason
    exit_code: int | None  # None when ended by a signal
    signal: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.reason is EndReason.exited and self.exit_code == 0


@dataclass(frozen=True)
class OutputLine:
    stream: str  # "stdout" | "stderr" | "system" (the platform's notes, e.g. a refused connection)
    data: bytes


@dataclass(frozen=True)
class OutputChunk:
    """Whole lines of one stream in the order written, each ending in a newline (the last line
    of a stream gets one if it had none); the same streams as `OutputLine`."""

    stream: str
    data: bytes


class SandboxHandle(abc.ABC):
    """A started sandbox."""

    @abc.abstractmethod
    async def wait(self) -> Exit:
        """Until the sandbox ends (the runtime enforces `limits.timeout_s` itself)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """End the whole process tree now (freeze, then kill); idempotent."""

    @abc.abstractmethod
    def output(self) -> AsyncIterator[OutputLine]:
        """Stdout and stderr lines as they come, until the sandbox ends."""

    async def output_chunks(self) -> AsyncIterator[OutputChunk]:
        """The same output as `output()`, many lines at a time: what a consumer that stores or
        forwards output reads, so its cost follows the bytes, not the lines. One consumer per
        handle, of either method. By default, each line of `output()` as a chunk."""
        async for line in self.output():
            yield OutputChunk(line.stream, line.data + b"\n")

    def live_events_file(self) -> Path | None:
        """A host path where `$SAASSY_EVENTS` lines can be read while the sandbox runs."""
        return None

    @abc.abstractmethod
    async def usage(self) -> Usage:
        """What the sandbox used; final after `wait()` returned."""

    @abc.abstractmethod
    async def cleanup(self) -> None:
        """Release cgroups, mounts and temporary files; safe to call more than once."""


class Runtime(abc.ABC):
    """A way of running sandboxes, with flags saying what it enforces on this host."""

    name: str
    isolation: IsolationLevel
    unavailable_reason: str | None = None  # set when isolation is `unavailable`
    isolates_network: bool = False
    enforces_memory: bool = False
    enforces_cpu: bool = False
    enforces_pids: bool = False
    enforces_disk: bool = False  # the output dir's total size is capped
    measures_cgroup_usage: bool = False

    @abc.abstractmethod
    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        """Start the sandbox and return its handle."""

    async def end_leftover(self, name: str) -> Usage | None:
        """After a crash: end what is left of sandbox `name` and return its usage if known.

        Frees nothing, so the figure stays readable (the same again) until `recover` or `sweep`
        frees the sandbox: a caller can record it first. Wall time is the caller's to bound.
        The default knows nothing (nothing outlives the process that started it).
        """
        return None

    async def recover(self, name: str) -> Usage | None:
        """After a crash: end what is left of sandbox `name`, release it, return its usage if known.

        The default knows nothing (nothing outlives the process that started it).
        """
        return None

    async def sweep(self, keep: Collection[str] = ()) -> int:
        """Free what sandboxes of dead platform processes left behind; how many were freed.

        Sandboxes named in `keep` (attempts adoption has yet to measure) are only ended.
        """
        return 0

    def refusal_for(self, *, network: bool) -> str | None:
        """Why a task type would be refused here (None: it can run), for the operator's eyes."""
        if self.isolation is IsolationLevel.unavailable:
            return "no sandbox can be made"
        return None

    def program_refusal(self, argv: Sequence[str]) -> str | None:
        """Why a command's program cannot start here, for the operator's eyes (None: it can, or
        this runtime runs images, which carry their own programs)."""
        return None

    def summary(self) -> str:
        """The isolation in force, in one line, for the start-up banner and the logs."""
        if self.isolation is IsolationLevel.unavailable:
            return f"UNAVAILABLE, tasks are refused: {self.unavailable_reason}"
        return f"{self.isolation.value} ({self.name} runtime)"

    def describe(self) -> dict[str, object]:
        """For `GET /api/v1/system` and the start-up banner."""
        return {
            "runtime": self.name,
            "isolation": self.isolation.value,
            "summary": self.summary(),
            "isolates_network": self.isolates_network,
            "enforces_memory": self.enforces_memory,
            "enforces_cpu": self.enforces_cpu,
            "enforces_pids": self.enforces_pids,
            "enforces_disk": self.enforces_disk,
            "measures_cgroup_usage": self.measures_cgroup_usage,
        }
