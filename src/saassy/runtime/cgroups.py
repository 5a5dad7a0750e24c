"""One sandbox's cgroup, on cgroup v2 where its controllers exist, else on cgroup v1.

The layout is detected once (`detect_cgroups`); each sandbox gets `<parent>/<name>` in every
controller it needs, or `<parent>/<tenant>/<name>` when it runs for a tenant: the kernel divides
a busy CPU between siblings by weight, so a tenant with many sandboxes running shares one
weight among them instead of outweighing a tenant with one; and the fewer it runs, the heavier
that weight (`tenant_weight`), so a light tenant's start is not queued behind a heavy one's.
Joining happens in the launcher (`join_files`), before the program runs. Killing freezes first so
nothing can fork while we signal, then SIGKILLs every member and thaws.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from saassy.runtime.base import Limits

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100_000
POLL_S = 0.001  # killed members vanish within a millisecond or two
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
TENANT_PREFIX = "tenant-"
CREATE_TRIES = 5  # the tenant's dir may be removed by its last sandbox as we create in it
# The kernel's default CPU weight of a cgroup (v1 `cpu.shares`, v2 `cpu.weight`), and how many times
# it a tenant running one sandbox gets (`tenant_weight`).
DEFAULT_WEIGHT = {1: 1024, 2: 100}
LIGHT_TENANT_BOOST = 8
READ_CHUNK = 65536


def cgroup_name(name: str) -> str:
    """A directory name safe to create: the spec's identity, never a path, never a tenant's."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".") or "sandbox"
    if cleaned.startswith(TENANT_PREFIX):  # a sandbox named so would hold a tenant's sandboxes
        cleaned = "_" + cleaned
    return cleaned[:200]


def tenant_dir_name(tenant: str) -> str:
    """The directory of a tenant's sandboxes: no sandbox's name starts with its prefix."""
    return TENANT_PREFIX + _UNSAFE.sub("_", tenant).lstrip(".")[:200]


def tenant_weight(version: int, sandboxes: int, share_of_host: float = 0.0) -> int:
    """A tenant's CPU weight while it runs `sandboxes` here: the default times
    `LIGHT_TENANT_BOOST // sandboxes`, never below the default; only the default while its
    sandboxes' `cpus` together are more than half the host's (`share_of_host`).

    With equal weights a tenant that starts one sandbox now and then still waited behind a
    tenant keeping eight busy: a cgroup that was idle wakes with little weight in the scheduler's
    books and queues behind the busy one's runnable tasks (a start took ~5x as long as alone).
    Weighing the light tenant more serves it first; what it can take stays capped by each of its
    sandboxes' own `cpus`, and two tenants running as many sandboxes weigh the same. That cap
    only bounds it while it is small: one sandbox allowed every core would take ~8/9 of a busy
    machine from a tenant running five, more than an equal share, not just first.
    """
    default = DEFAULT_WEIGHT[version]
    if share_of_host > 0.5:
        return default
    return default * max(1, LIGHT_TENANT_BOOST // max(1, sandboxes))


def _cpus_allowed(directory: str, version: int, host: int) -> float:
    """A sandbox's `cpus` as its cgroup caps them; unknown or uncapped: the `host`'s CPUs."""
    try:
        if version == 1:
            quota = int(_read(os.path.join(directory, "cpu.cfs_quota_us")))
            period = int(_read(os.path.join(directory, "cpu.cfs_period_us")))
        else:
            text = _read(os.path.join(directory, "cpu.max")).split()
            quota, period = int(text[0]), int(text[1])  # "max" (no cap) fails here
    except (OSError, ValueError, IndexError):
        return host
    return quota / period if quota > 0 and period > 0 else host


# Files through `os`, not `Path.read_text`/`write_text`: a sandbox's start and end make ~20 such
# calls on the server's loop, and the text layer took ~40% of their time (docs/benchmarks.md).
def _write(path: Path | str, value: str) -> None:
    # The flags `write_text` opens with: the kernel takes them on a cgroup's files too.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path | str) -> str:
    """The whole file (`cgroup.procs` of a sandbox that forked thousands passes one read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, READ_CHUNK)]
        while chunks[-1]:
            chunks.append(os.read(fd, READ_CHUNK))
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _read_int(path: Path | str) -> int | None:
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mkdir(path: Path | str) -> None:
    """`mkdir`, an existing directory being fine (`Path.mkdir(exist_ok=True)`, without its
    `stat` when the directory is new)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mount point, options) of every cgroup mount of this process."""
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 4 and fields[2] in {"cgroup", "cgroup2"}:
                found.append((fields[2], fields[1], set(fields[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as own:
        for line in own:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _writable_parent(mount: Path, own: str, parent: str) -> Path | None:
    """`<mount>/<parent>`, else `<mount>/<own cgroup>/<parent>`: the first we can create in."""
    for base in (mount, mount / own.lstrip("/")):
        candidate = base / parent
        try:
            candidate.mkdir(exist_ok=True)
            probe = candidate / f".probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
        except OSError:
            continue
        return candidate
    return None


@dataclass(frozen=True)
class CgroupLayout:
    """Where Saassy's cgroups live: v2 has one parent, v1 one per controller."""

    version: int
    parents: dict[str, Path]  # v1: controller -> parent dir; v2: {"": parent dir}

    def existing(self, name: str) -> SandboxCgroup | None:
        """The cgroup of sandbox `name` if it is still there (after a crash), under whichever
        tenant it ran for."""
        for relative in self._relative_paths(name):
            dirs = {key: parent / relative for key, parent in self.parents.items()}
            if any(directory.is_dir() for directory in dirs.values()):
                found = {k: d for k, d in dirs.items() if d.is_dir()}
                return SandboxCgroup(self.version, found, tenant=relative.parent != Path())
        return None

    def _relative_paths(self, name: str) -> list[Path]:
        leaf = cgroup_name(name)
        paths = [Path(leaf)]
        for parent in self.parents.values():
            with contextlib.suppress(OSError):
                paths += [
                    Path(tenant.name, leaf)
                    for tenant in parent.iterdir()
                    if tenant.name.startswith(TENANT_PREFIX) and (tenant / leaf).is_dir()
                ]
        return list(dict.fromkeys(paths))

    def remove_empty_tenants(self) -> int:
        """The tenants' directories left empty (a platform killed between a sandbox's directory
        and its tenant's); a busy one stays. How many went."""
        return sum(remove_empty_tenant_dirs(parent) for parent in self.parents.values())

    def create(self, name: str, limits: Limits, tenant: str | None = None) -> SandboxCgroup:
        leaf = cgroup_name(name)
        relative = Path(tenant_dir_name(tenant), leaf) if tenant else Path(leaf)
        dirs = {key: parent / relative for key, parent in self.parents.items()}
        cgroup = SandboxCgroup(self.version, dirs, tenant=bool(tenant))
        cgroup.create(limits)
        return cgroup


def remove_empty_tenant_dirs(parent: Path) -> int:
    """Remove the empty tenant directories in `parent` (a busy one stays); how many went."""
    removed = 0
    with contextlib.suppress(OSError):
        for tenant in parent.iterdir():
            if tenant.name.startswith(TENANT_PREFIX) and tenant.is_dir():
                with contextlib.suppress(OSError):  # busy: a sandbox of the tenant runs
                    tenant.rmdir()
                    removed += 1
    return removed


def detect_cgroups(parent: str = "saassy") -> CgroupLayout | None:
    """v2 when its memory, cpu and pids controllers are usable, else v1, else None."""
    mounts = _mounts()
    own = _own_paths()
    for fstype, point, _ in mounts:
        if fstype != "cgroup2":
            continue
        root = Path(point)
        try:
            available = set((root / "cgroup.controllers").read_text().split())
        except OSError:
            continue
        if not set(V2_CONTROLLERS) <= available:
            continue
        found = _writable_parent(root, own.get("", "/"), parent)
        if found is not None and _enable_v2_controllers(found):
            return CgroupLayout(2, {"": found})
    parents: dict[str, Path] = {}
    for controller in V1_CONTROLLERS:
        mount = next((p for t, p, o in mounts if t == "cgroup" and controller in o), None)
        if mount is None:
            return None
        found = _writable_parent(Path(mount), own.get(controller, "/"), parent)
        if found is None:
            return None
        parents[controller] = found
    return CgroupLayout(1, parents)


def _enable_v2_controllers(parent: Path) -> bool:
    """Delegate memory, cpu and pids down to `parent`'s children (and to `parent` itself)."""
    wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS)
    for directory in (parent.parent, parent):
        try:
            enabled = set((directory / "cgroup.subtree_control").read_text().split())
            if not set(V2_CONTROLLERS) <= enabled:
                _write(directory / "cgroup.subtree_control", wanted)
        except OSError:
            return False
    return True


class SandboxCgroup:
    """The cgroup(s) of one sandbox: limits, membership, freeze-and-kill, accounting."""

    def __init__(self, version: int, dirs: dict[str, Path], *, tenant: bool = False) -> None:
        self.version = version
        self.dirs = dirs
        self.tenant = tenant  # its directories sit in a tenant's, which it may have to make

    @property
    def relative_path(self) -> str:
        """Below the layout's parent: `<name>`, or `<tenant dir>/<name>`."""
        directory = next(iter(self.dirs.values()))
        return f"{directory.parent.name}/{directory.name}" if self.tenant else directory.name

    def _dir(self, controller: str) -> Path:
        key = controller if self.version == 1 else ""
        directory = self.dirs.get(key)
        if directory is None:  # a leftover half-removed by a crash has only some controllers
            raise FileNotFoundError(f"no {key or 'unified'} cgroup directory for this sandbox")
        return directory

    @property
    def join_files(self) -> list[Path]:
        """The files the single-threaded launcher writes "0" (itself) into to join.

        Writing a pid into `cgroup.procs` makes the kernel wait for an RCU grace period under
        its global threadgroup lock: ~10 ms for the five v1 controllers on the 2-core VM. A
        "0" (the writer itself) into `cgroup.procs`, or any pid into v1's per-thread `tasks`,
        took ~0.05 ms each there. v1 gets the narrowest, `tasks` and "0"; v2 has no `tasks`.
        """
        name = "tasks" if self.version == 1 else "cgroup.procs"
        return [directory / name for directory in self.dirs.values()]

    def create(self, limits: Limits) -> None:
        self.make_dirs()
        memory = limits.memory_mb * 1024 * 1024
        quota = max(1000, int(limits.cpus * CFS_PERIOD_US))
        if self.version == 1:
            memory_dir = self._dir("memory")
            _write(memory_dir / "memory.limit_in_bytes", str(memory))
            with contextlib.suppress(OSError):  # absent when swap accounting is off
                _write(memory_dir / "memory.memsw.limit_in_bytes", str(memory))
            _write(self._dir("cpu") / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(self._dir("cpu") / "cpu.cfs_quota_us", str(quota))
            _write(self._dir("pids") / "pids.max", str(limits.pids))
        else:
            directory = self._dir("")
            _write(directory / "memory.max", str(memory))
            with contextlib.suppress(OSError):
                _write(directory / "memory.swap.max", "0")
            _write(directory / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            _write(directory / "pids.max", str(limits.pids))
        if self.tenant:
            self.weigh_tenant()

    def weigh_tenant(self) -> None:
        """Set the tenant's CPU weight for the sandboxes it runs here now (`tenant_weight`).
        Counted from the directory, so every process sharing the layout sees the same number;
        two of them weighing at once may leave a count one sandbox old until the next start or
        end, which only shifts a weight."""
        cpu_dir = self.dirs.get("cpu" if self.version == 1 else "")
        if cpu_dir is None:
            return
        tenant_dir = cpu_dir.parent
        name = "cpu.shares" if self.version == 1 else "cpu.weight"
        with contextlib.suppress(OSError):  # the tenant's last sandbox removed its dir meanwhile
            with os.scandir(tenant_dir) as entries:
                sandboxes = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            if not sandboxes:
                return
            share = 0.0
            if LIGHT_TENANT_BOOST // len(sandboxes) > 1:  # a few reads, only when it may weigh more
                host = len(os.sched_getaffinity(0))
                allowed = sum(_cpus_allowed(sandbox, self.version, host) for sandbox in sandboxes)
                share = allowed / host
            weight = tenant_weight(self.version, len(sandboxes), share)
            _write(tenant_dir / name, str(weight))

    def make_dirs(self) -> None:
        """The directories, and the tenant's they sit in; once made, a sandbox's directory keeps
        its tenant's from going."""
        for attempt in range(CREATE_TRIES):
            try:
                for directory in self.dirs.values():
                    if self.tenant:
                        self._make_tenant_dir(directory.parent)
                    _mkdir(directory)
                return
            # The tenant's last other sandbox removed its dir (even while mkdir found it there).
            except (FileNotFoundError, FileExistsError):
                if attempt == CREATE_TRIES - 1:
                    raise

    def _make_tenant_dir(self, directory: Path) -> None:
        _mkdir(directory)
        if self.version == 2:  # a v2 cgroup's children get only the controllers it passes on;
            # written each time, as another sandbox may have made the dir a moment ago
            _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS))

    def pids(self) -> list[int]:
        # Every controller's directory lists the same members; prefer pids, take any there is.
        directory = self.dirs.get("pids" if self.version == 1 else "") or next(
            iter(self.dirs.values()), None
        )
        if directory is None:
            return []
        try:
            text = _read(directory / "cgroup.procs")
        except OSError:
            return []
        # v2 lists a member outside the reader's pid namespace as 0, and kill(0) would signal
        # our own process group.
        return [pid for pid in map(int, text.split()) if pid > 0]

    def _freeze(self, frozen: bool) -> None:
        if self.version == 1:
            _write(self._dir("freezer") / "freezer.state", "FROZEN" if frozen else "THAWED")
        else:
            _write(self._dir("") / "cgroup.freeze", "1" if frozen else "0")

    def _is_frozen(self) -> bool:
        if self.version == 1:
            return _read(self._dir("freezer") / "freezer.state").strip() == "FROZEN"
        events = _read(self._dir("") / "cgroup.events")
        return "frozen 1" in events

    async def kill_all(self, deadline_s: float = 5.0) -> None:
        """Freeze, SIGKILL every member, thaw, and wait until the cgroup is empty."""
        if not self.pids():
            return
        end = time.monotonic() + deadline_s
        kill_file = self._dir("") / "cgroup.kill" if self.version == 2 else None
        if kill_file is not None and kill_file.exists():
            _write(kill_file, "1")
        else:
            with contextlib.suppress(OSError):
                self._freeze(True)
                while not self._is_frozen() and time.monotonic() < end:  # noqa: ASYNC110
                    await asyncio.sleep(POLL_S)  # the kernel offers no event for "frozen" in v1
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self._freeze(False)
        while self.pids() and time.monotonic() < end:
            for pid in self.pids():  # stragglers that forked between listing and freezing
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(POLL_S)

    def cpu_seconds(self) -> float:
        if self.version == 1:
            nanos = _read_int(self._dir("cpuacct") / "cpuacct.usage") or 0
            return nanos / 1e9
        for line in _read(self._dir("") / "cpu.stat").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        return 0.0

    def peak_memory_bytes(self) -> int | None:
        """The kernel's high-water mark; None on a v2 kernel without memory.peak."""
        if self.version == 1:
            return _read_int(self._dir("memory") / "memory.max_usage_in_bytes")
        return _read_int(self._dir("") / "memory.peak")

    def current_memory_bytes(self) -> int:
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        return _read_int(self._dir("memory") / name) or 0

    def oom_killed(self) -> bool:
        """Did the kernel's OOM killer act inside this cgroup?"""
        if self.version == 1:
            control = _read(self._dir("memory") / "memory.oom_control")
            fields = dict(line.split() for line in control.splitlines() if " " in line)
            if "oom_kill" in fields:
                return int(fields["oom_kill"]) > 0
            return (_read_int(self._dir("memory") / "memory.failcnt") or 0) > 0
        events = _read(self._dir("") / "memory.events")
        fields = dict(line.split() for line in events.splitlines() if " " in line)
        return int(fields.get("oom_kill", "0")) > 0

    def remove(self) -> None:
        """Remove the (empty) cgroup directories, and its tenant's when it was the last one
        there; idempotent."""
        for directory in self.dirs.values():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(directory)
            if self.tenant:
                with contextlib.suppress(OSError):  # busy: another sandbox of the tenant runs
                    os.rmdir(directory.parent)
        if self.tenant:
            self.weigh_tenant()  # the tenant's others, if any, each weigh a little more
