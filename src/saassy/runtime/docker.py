"""The docker runtime: each sandbox a container of its task type's image, closed by default.

Through the docker SDK (the `docker` package, dockerd's own client library): no network
(`network_mode=none`), a read-only root, a non-root uid of its own, every capability dropped,
no-new-privileges, dockerd's default seccomp profile, memory (swap pinned), CPU and pids limits,
a size-capped `/tmp`, an init process as pid 1, and a cgroup parent of the sandbox's own so its
CPU-seconds and peak memory are read from the kernel after the exit (container.py). Containers
carry labels naming the sandbox, the installation and the platform process that started them,
so a sweep at start finds and removes what a dead process left behind.

A task type with network, or with its secrets as environment variables, runs behind a gate
(gate.py): its container's process is the image's `/bin/sh` blocked on a pipe until the
platform has opened the egress proxy's socket in the container's network namespace (still
docker's `none`: only `lo`) and written the secrets through the pipe, never into the
container's config. Such images must have a `/bin/sh` that runs the gate: checked once per
image, at start-up for the catalog's and at first use for any other. Where the platform cannot
enter a container's namespace (not root) or runs no proxy, network is refused as under the
process runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from docker import DockerClient
from docker.errors import DockerException, ImageNotFound, NotFound

from saassy.runtime import mounts
from saassy.runtime.base import (
    EgressGateway,
    IsolationLevel,
    Runtime,
    SandboxHandle,
    SandboxRefused,
    SandboxSpec,
    Usage,
)
from saassy.runtime.cgroups import CgroupLayout, SandboxCgroup, cgroup_name, detect_cgroups
from saassy.runtime.container import (
    LABEL_DEADLINE,
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_SANDBOX,
    ContainerSandbox,
    DockerHost,
)
from saassy.runtime.container_leftovers import (
    remove_cgroups,
    remove_empty_tenants,
    remove_staging,
)
from saassy.runtime.gate import PROBE_TIMEOUT_S, shell_probe
from saassy.runtime.identity import SandboxIdentities
from saassy.runtime.netns import NETWORK_REFUSED, network_unavailable
from saassy.runtime.syscalls import native_arch
from saassy.runtime.workroot import check_instance, leftover_of, owner_alive, private_work_root

log = structlog.get_logger(__name__)


def shown(url: str) -> str:
    """dockerd's address fit to print: a user and password in it are left out."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=f"***@{netloc}"))


DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
INSTALL_HINT = "install docker.io and start dockerd, or point SAASSY_DOCKER_URL at one"
IMAGE_GONE = "this task type's image is not on this server; its operator can see why"
IMAGE_UNFIT = "this task type's image cannot run here as configured; its operator can see why"
NEEDS_SHELL = (
    "a task type with network or secrets_as_env needs a /bin/sh in its image: the platform "
    "holds the program behind it until the egress proxy listens and the secrets are passed "
    "(busybox, dash or bash, with the libraries it loads; `docker run --rm --entrypoint "
    "/bin/sh IMAGE -c true` shows why it does not run)"
)
CONTROL_TIMEOUT_S = 60
POOL_SIZE = 128  # each running sandbox holds two connections (its output and its exit)


@dataclass(frozen=True)
class ImageProgram:
    """What an image runs when the task type names no command of its own."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]


class DockerUnavailable(Exception):
    """The docker runtime cannot run here (no dockerd, a missing image); one line says why."""


def _relative_parent(layout: CgroupLayout) -> str | None:
    """The layout's parent as dockerd's `--cgroup-parent` names it: the same path below every
    hierarchy's root, else None."""
    relative = set()
    for key, parent in layout.parents.items():
        root = _hierarchy_root(parent, key)
        if root is None:
            return None
        relative.add("/" + parent.relative_to(root).as_posix())
    return relative.pop() if len(relative) == 1 else None


def _hierarchy_root(path: Path, controller: str) -> Path | None:
    with open("/proc/self/mounts") as table:
        for line in table:
            fields = line.split()
            if len(fields) < 4 or fields[2] not in {"cgroup", "cgroup2"}:
                continue
            if controller and controller not in fields[3].split(","):
                continue
            if path.is_relative_to(fields[1]):
                return Path(fields[1])
    return None


class DockerRuntime(Runtime):
    """Sandboxes as docker containers, one image per task type."""

    name = "docker"
    isolation = IsolationLevel.container
    isolates_network = True
    enforces_memory = True
    enforces_cpu = True
    enforces_pids = True
    measures_cgroup_usage = True

    def __init__(
        self,
        *,
        url: str = DEFAULT_DOCKER_URL,
        instance: str | None = None,
        work_dir: Path | None = None,
        identities: SandboxIdentities | None = None,
        egress: EgressGateway | None = None,
    ) -> None:
        self.url = url
        self.instance = check_instance(instance or "default")
        if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
            raise DockerUnavailable(f"no dockerd socket at {shown(url)} ({INSTALL_HINT})")
        try:  # the client asks dockerd for its API version at once
            client = DockerClient(base_url=url, timeout=CONTROL_TIMEOUT_S, max_pool_size=POOL_SIZE)
        except DockerException as exc:
            raise DockerUnavailable(
                f"dockerd does not answer at {shown(url)} ({INSTALL_HINT})"
            ) from exc
        try:
            layout, relative, self.version = self._probe(client)
        except BaseException:
            client.close()
            raise
        self.identities = identities or SandboxIdentities()
        # Staging dirs (input, output, events, secrets) bound into containers.
        name = f"saassy-docker-{os.geteuid()}-{self.instance}"
        self.work_root = private_work_root(work_dir, name)
        self.host = DockerHost(
            client=client,
            cgroups=layout,
            cgroup_parent=relative,
            instance=self.instance,
            work_root=self.work_root,
            can_mount=mounts.can_mount_tmpfs(self.work_root),
            egress=egress if network_unavailable(egress) is None else None,
        )
        self.network_unavailable = network_unavailable(egress)
        self._images: dict[str, ImageProgram | str] = {}  # by image id, gated types'; or why not
        self.enforces_disk = self.host.can_mount

    def _probe(self, client: DockerClient) -> tuple[CgroupLayout, str, str]:
        """dockerd answers and places cgroups where we say; ours are writable: the layout,
        its parent as dockerd names it, dockerd's version."""
        try:
            client.ping()
            info = client.info()
        except DockerException as exc:
            raise DockerUnavailable(
                f"dockerd does not answer at {shown(self.url)} ({INSTALL_HINT})"
            ) from exc
        if info.get("CgroupDriver") != "cgroupfs":
            raise DockerUnavailable(
                f"dockerd uses the {info.get('CgroupDriver')} cgroup driver: the docker "
                "runtime reads usage from cgroups it places itself, start dockerd with "
                "--exec-opt native.cgroupdriver=cgroupfs"
            )
        parent = f"saassy-docker-{self.instance}"
        layout = detect_cgroups(parent)
        relative = _relative_parent(layout) if layout is not None else None
        if layout is None or relative is None:
            raise DockerUnavailable(
                "no writable cgroups for the docker runtime's usage accounting (run the "
                "platform as root, with cgroup v1 or v2 controllers memory, cpu and pids)"
            )
        return layout, relative, str(info.get("ServerVersion", "?"))

    def close(self) -> None:
        """Close the connections to dockerd (running sandboxes are the caller's to end)."""
        self.host.client.close()

    def require_images(self, images: Mapping[str, str], gated: Collection[str] = ()) -> None:
        """Each task type's image must be on this docker host (no registry is pulled from), and
        those of the `gated` task types must run the gate."""
        for task_type, image in sorted(images.items()):
            try:
                self.host.client.images.get(image)
            except ImageNotFound:
                raise DockerUnavailable(
                    f"task type {task_type}: image {image!r} is not on this docker host "
                    "(build or load it there first: the runtime never pulls)"
                ) from None
            except DockerException as exc:
                raise DockerUnavailable(
                    f"task type {task_type}: image {image!r} cannot be inspected: {exc}"
                ) from None
            if task_type in gated and isinstance(why := self._gated_program(image, ()), str):
                raise DockerUnavailable(f"task type {task_type}: image {image!r}: {why}")

    def _gated_program(self, image: str, argv: tuple[str, ...]) -> tuple[str, ...] | str:
        """What runs behind the gate: the image's ENTRYPOINT, then `argv` or else its CMD; or
        why this image cannot run it (probed once per image: by its id, so an image rebuilt
        under the same name is looked at again)."""
        inspected = self.host.client.images.get(image)
        key = inspected.id or image
        if key not in self._images:
            config = inspected.attrs.get("Config") or {}
            why = shell_probe(self.host.client, key, self._probe_labels())
            self._images[key] = (
                f"{why}; {NEEDS_SHELL}"
                if why is not None
                else ImageProgram(
                    tuple(config.get("Entrypoint") or ()), tuple(config.get("Cmd") or ())
                )
            )
        found = self._images[key]
        if isinstance(found, str):
            return found
        program = (*found.entrypoint, *(argv or found.cmd))
        return program or "it has no ENTRYPOINT or CMD and the task type names no command"

    def _probe_labels(self) -> dict[str, str]:
        return {
            LABEL_INSTANCE: self.instance,
            LABEL_OWNER: str(os.getpid()),
            LABEL_SANDBOX: f"shell-probe-{os.getpid()}-{time.monotonic_ns()}",
            LABEL_DEADLINE: str(int(time.time()) + PROBE_TIMEOUT_S),
        }

    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        if spec.network and self.network_unavailable is not None:
            raise SandboxRefused("network_unavailable", NETWORK_REFUSED)
        if spec.image is None:
            raise SandboxRefused("no_image", "the docker runtime runs images: this type has none")
        gated = None
        if spec.network or (spec.secrets_as_env and spec.secrets):
            try:
                found = await asyncio.to_thread(self._gated_program, spec.image, spec.argv)
            except ImageNotFound:
                log.error("runtime.image_missing", sandbox=spec.name, image=spec.image)
                raise SandboxRefused("image_missing", IMAGE_GONE) from None
            if isinstance(found, str):
                log.error("runtime.image_unfit", sandbox=spec.name, image=spec.image, why=found)
                raise SandboxRefused("image_unfit", IMAGE_UNFIT)
            gated = found
        identity = self.identities.take()
        handle = ContainerSandbox(spec, self.host, identity, gated=gated)
        try:
            await handle.launch()
        except ImageNotFound:  # removed since start-up checked it: the operator's to fix
            self.identities.give_back(identity)
            log.error("runtime.image_missing", sandbox=spec.name, image=spec.image)
            raise SandboxRefused("image_missing", IMAGE_GONE) from None
        except BaseException:
            self.identities.give_back(identity)
            raise
        handle.after_cleanup(lambda: self.identities.give_back(identity))
        return handle

    def refusal_for(self, *, network: bool) -> str | None:
        if network and self.network_unavailable is not None:
            return f"network unavailable: {self.network_unavailable}"
        return None

    def _containers(self, name: str | None = None) -> list[dict[str, Any]]:
        labels = [f"{LABEL_INSTANCE}={self.instance}"]
        if name is not None:
            labels.append(f"{LABEL_SANDBOX}={name}")
        found: list[dict[str, Any]] = self.host.client.api.containers(
            all=True, filters={"label": labels}
        )
        return found

    def _kill_and_measure(self, name: str) -> Usage | None:
        for found in self._containers(name):
            with contextlib.suppress(NotFound, DockerException):
                self.host.client.api.kill(found["Id"])
            with contextlib.suppress(NotFound, DockerException):
                self.host.client.api.wait(found["Id"])
        cgroup = self.host.cgroups.existing(name)
        if cgroup is None:
            return None
        try:
            return Usage(cgroup.cpu_seconds(), cgroup.peak_memory_bytes() or 0, 0.0)
        except OSError:
            return None

    def _free(self, name: str) -> None:
        for found in self._containers(name):
            with contextlib.suppress(NotFound):
                self.host.client.api.remove_container(found["Id"], force=True)
        cgroup = self.host.cgroups.existing(name) or SandboxCgroup(
            self.host.cgroups.version,
            {k: p / cgroup_name(name) for k, p in self.host.cgroups.parents.items()},
        )
        remove_cgroups(self.host.cgroup_parent, cgroup)
        for leftover in self.work_root.glob(f"{cgroup_name(name)}@*"):
            remove_staging(leftover)

    async def end_leftover(self, name: str) -> Usage | None:
        """Kill what a crashed platform process left of sandbox `name` and measure it; its
        container and cgroup stay until `recover` or `sweep`."""
        return await asyncio.to_thread(self._kill_and_measure, name)

    async def recover(self, name: str) -> Usage | None:
        usage = await asyncio.to_thread(self._kill_and_measure, name)
        await asyncio.to_thread(self._free, name)
        return usage

    async def sweep(self, keep: Collection[str] = ()) -> int:
        """Remove every container of this installation whose platform process is gone (only
        kill those in `keep`: adoption measures and frees them), and their staging dirs."""
        return await asyncio.to_thread(self._sweep, set(keep))

    def _sweep(self, keep: set[str]) -> int:
        kept = {cgroup_name(name) for name in keep}  # staging dirs carry the cgroup's name
        freed = 0
        names: set[str] = set()
        now = time.time()
        for found in self._containers():
            labels = found.get("Labels") or {}
            assert isinstance(labels, dict)
            owner = str(labels.get(LABEL_OWNER, ""))
            deadline = str(labels.get(LABEL_DEADLINE, ""))
            if owner.isdigit() and owner_alive(int(owner)):
                # A live owner (or a process that took a dead one's pid) ends its own: only
                # one past its deadline is killed here; its owner, if any, sees it end.
                if deadline.isdigit() and int(deadline) < now and found.get("State") == "running":
                    with contextlib.suppress(NotFound, DockerException):
                        self.host.client.api.kill(found["Id"])
                continue
            names.add(str(labels.get(LABEL_SANDBOX, "")))
        for leftover in self.work_root.glob("*@*"):
            name, pid = leftover_of(leftover)
            if not owner_alive(pid):
                names.add(name)
        for name in names - {""}:
            self._kill_and_measure(name)
            if cgroup_name(name) in kept:
                continue
            self._free(name)
            freed += 1
        remove_empty_tenants(self.host.cgroup_parent, self.host.cgroups)
        return freed

    def summary(self) -> str:
        disk = "" if self.enforces_disk else "; not enforced: disk (the output dir is not capped)"
        return (
            f"container: docker {self.version} at {shown(self.url)}; each sandbox as "
            f"{self.identities.description}, read-only root, no capabilities, network: "
            f"{'egress proxy' if self.network_unavailable is None else 'none'}; "
            f"{_seccomp_summary()}; cgroup v{self.host.cgroups.version} usage{disk}"
        )

    def describe(self) -> dict[str, object]:
        described = super().describe()
        described["docker_version"] = self.version
        described["sandbox_uid"] = self.identities.description
        described["cgroup_version"] = self.host.cgroups.version
        described["network"] = self.network_unavailable or "egress proxy"
        if (arch := native_arch()) is not None:
            described["seccomp"] = arch.name
        return described


def _seccomp_summary() -> str:
    arch = native_arch()
    return f"seccomp filter ({arch.name})" if arch else "dockerd's default seccomp profile"
