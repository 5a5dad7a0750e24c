"""A tenant's sandboxes share one CPU weight: on a busy machine a tenant with many sandboxes
running gets no more of it than a tenant with one (both runtimes, real cgroups), a tenant
running few weighs more, and the tenant's cgroup directory comes and goes with its sandboxes."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from saassy.runtime.base import Limits, Runtime, SandboxHandle
from saassy.runtime.cgroups import (
    DEFAULT_WEIGHT,
    CgroupLayout,
    detect_cgroups,
    tenant_dir_name,
    tenant_weight,
)
from tests.runtime.support import cgroup_of, image_for, spec_for
from tests.services import IN_CI

BURN_S = 2.0
# The quiet tenant's program burns the CPU for BURN_S of wall time, saying when it begins and how
# much CPU it got meanwhile; the crowd's burn until they are killed.
BURN = f"""
    import time
    print("begin", flush=True)
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < {BURN_S}:
        pass
    print("cpu", time.process_time() - cpu, flush=True)
"""
BURN_ON = """
    while True:
        pass
"""


@pytest.fixture
def runtime(any_runtime: Runtime) -> Runtime:
    return any_runtime


async def start(
    runtime: Runtime, workspace: Path, name: str, tenant: str, code: str
) -> SandboxHandle:
    directory = workspace / name
    (directory / "output").mkdir(parents=True)
    (directory / "input.json").write_text("{}")
    spec = spec_for(directory, code, image=image_for(runtime), cpus=2, timeout_s=60)
    return await runtime.start(spec.model_copy(update={"tenant": tenant}))


async def burning(handle: SandboxHandle) -> None:
    """Until its program is on the CPU."""
    for _ in range(1000):
        if cgroup_of(handle).cpu_seconds() > 0.05:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the program did not start")


async def test_a_tenant_with_one_sandbox_gets_its_share_beside_a_crowded_one(
    runtime: Runtime, workspace: Path
) -> None:
    # Twice as many as the machine has cores: unweighted, the quiet tenant's one sandbox would
    # get a core's fraction 1 / (2 + 1/cores), under half a core.
    crowd = [
        await start(runtime, workspace, f"crowd-{n}", "crowded-tenant", BURN_ON)
        for n in range(2 * (os.cpu_count() or 1))
    ]
    try:
        for handle in crowd:
            await burning(handle)
        quiet = await start(runtime, workspace, "quiet", "quiet-tenant", BURN)
        relative = cgroup_of(quiet).relative_path
        assert relative.startswith(tenant_dir_name("quiet-tenant") + "/")
        crowd_cpu: list[float] = []  # the crowd's, when the quiet one's burn begins and ends
        said: list[str] = []
        async for line in quiet.output():
            said.append(line.data.decode())
            crowd_cpu.append(sum(cgroup_of(handle).cpu_seconds() for handle in crowd))
        assert (await quiet.wait()).succeeded
        await quiet.cleanup()
    finally:
        for handle in crowd:
            await handle.kill()
            await handle.wait()
            await handle.cleanup()
    assert said[0].strip() == "begin", said
    quiet_cpu = float(said[-1].split()[1])
    crowds = crowd_cpu[-1] - crowd_cpu[0]
    # Unweighted, the crowd would get four times what the quiet one does (0.25); weighted, the two
    # tenants get the same (whatever the machine's other work leaves them), up to the core
    # that is all the quiet one's single busy thread can use.
    assert quiet_cpu >= 0.5 * min(crowds, BURN_S), (quiet_cpu, crowds)


@pytest.fixture
def layout() -> Iterator[CgroupLayout]:
    found = detect_cgroups(f"saassy-tenant-test-{os.getpid()}")
    if found is None:  # a non-root user's machine, as with require_isolation
        message = "this test needs writable cgroups (root)"
        if IN_CI:
            pytest.fail(f"{message}; CI runs these tests as root")
        pytest.skip(message)
    yield found
    for parent in found.parents.values():
        parent.rmdir()


def test_the_tenants_directory_goes_with_its_last_sandbox(layout: CgroupLayout) -> None:
    limits = Limits()
    first = layout.create("task-a-attempt-1", limits, "org-1")
    second = layout.create("task-b-attempt-1", limits, "org-1")
    alone = layout.create("task-c-attempt-1", limits)
    for parent in layout.parents.values():
        assert (parent / tenant_dir_name("org-1") / "task-a-attempt-1").is_dir()
        assert (parent / "task-c-attempt-1").is_dir()
    found = layout.existing("task-b-attempt-1")  # after a crash, by its name alone
    assert found is not None
    assert found.dirs == second.dirs
    assert found.relative_path == f"{tenant_dir_name('org-1')}/task-b-attempt-1"
    first.remove()
    assert all((p / tenant_dir_name("org-1")).is_dir() for p in layout.parents.values())
    found.remove()
    assert not any((p / tenant_dir_name("org-1")).exists() for p in layout.parents.values())
    alone.remove()
    assert layout.existing("task-b-attempt-1") is None
    for parent in layout.parents.values():
        assert [child for child in parent.iterdir() if child.is_dir()] == []


def test_a_tenant_running_fewer_sandboxes_weighs_more(layout: CgroupLayout) -> None:
    cpu_parent = layout.parents["cpu" if layout.version == 1 else ""]
    weight_file = (
        cpu_parent
        / tenant_dir_name("org-3")
        / ("cpu.shares" if layout.version == 1 else "cpu.weight")
    )
    default = DEFAULT_WEIGHT[layout.version]

    def weight() -> int:
        return int(weight_file.read_text())

    sandboxes = [layout.create("task-0-attempt-1", Limits(), "org-3")]
    assert weight() == 8 * default
    sandboxes.append(layout.create("task-1-attempt-1", Limits(), "org-3"))
    assert weight() == 4 * default
    sandboxes += [layout.create(f"task-{n}-attempt-1", Limits(), "org-3") for n in range(2, 10)]
    assert weight() == default  # ten: no less than any tenant's default
    other = layout.create("task-x-attempt-1", Limits(), "org-4")  # another tenant's count
    assert weight() == default
    for sandbox in sandboxes[1:]:
        sandbox.remove()
    assert weight() == 8 * default  # the last one left weighs as one alone
    sandboxes[0].remove()
    other.remove()
    assert not weight_file.parent.exists()


def test_a_light_tenant_that_could_take_over_half_the_host_weighs_the_default(
    layout: CgroupLayout,
) -> None:
    # Weighing it more serves a light tenant first only while it cannot take more than an
    # equal share anyway: one sandbox allowed every core would, at eight times the weight,
    # take ~8/9 of a busy machine from a tenant running five.
    host = len(os.sched_getaffinity(0))
    cpu_parent = layout.parents["cpu" if layout.version == 1 else ""]
    name = "cpu.shares" if layout.version == 1 else "cpu.weight"
    default = DEFAULT_WEIGHT[layout.version]

    def weight(tenant: str) -> int:
        return int((cpu_parent / tenant_dir_name(tenant) / name).read_text())

    wide = layout.create("task-w-attempt-1", Limits(cpus=float(host)), "org-wide")
    assert weight("org-wide") == default
    narrow = layout.create("task-n-attempt-1", Limits(cpus=host / 4), "org-narrow")
    assert weight("org-narrow") == 8 * default
    second = layout.create("task-m-attempt-1", Limits(cpus=host / 2), "org-narrow")
    assert weight("org-narrow") == default  # together three quarters of the host
    second.remove()
    assert weight("org-narrow") == 8 * default
    for sandbox in (wide, narrow):
        sandbox.remove()


@pytest.mark.parametrize(
    ("sandboxes", "times"), [(0, 8), (1, 8), (2, 4), (3, 2), (4, 2), (5, 1), (8, 1), (100, 1)]
)
def test_the_weight_falls_with_the_sandboxes_to_the_default(sandboxes: int, times: int) -> None:
    assert tenant_weight(1, sandboxes) == 1024 * times
    assert tenant_weight(2, sandboxes) == 100 * times


def test_one_tenants_sandboxes_made_and_removed_at_once_never_fail(layout: CgroupLayout) -> None:
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for n in range(150):
                layout.create(f"task-{worker}-{n}", Limits(), "busy-org").remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not any((p / tenant_dir_name("busy-org")).exists() for p in layout.parents.values())


def test_a_sandbox_named_like_a_tenant_never_holds_that_tenants_sandboxes(
    layout: CgroupLayout,
) -> None:
    named = layout.create("tenant-org-2", Limits())  # no tenant, a tenant's name
    tenants = layout.create("task-a-attempt-1", Limits(), "org-2")
    for key, directory in named.dirs.items():
        assert directory.parent == layout.parents[key]
        assert not tenants.dirs[key].is_relative_to(directory)
    tenants.remove()
    named.remove()  # not busy with the other's sandbox
    assert not any(d.exists() for d in [*named.dirs.values(), *tenants.dirs.values()])


def test_the_sweep_takes_the_empty_tenant_directories_a_crash_left(layout: CgroupLayout) -> None:
    for parent in layout.parents.values():  # killed between the tenant's dir and the sandbox's
        (parent / tenant_dir_name("crashed-org")).mkdir()
    running = layout.create("task-b-attempt-1", Limits(), "running-org")
    assert layout.remove_empty_tenants() == len(layout.parents)
    assert not any((p / tenant_dir_name("crashed-org")).exists() for p in layout.parents.values())
    assert all(d.is_dir() for d in running.dirs.values())  # a busy one stays
    running.remove()


def test_an_empty_tenant_is_no_tenant(layout: CgroupLayout) -> None:
    cgroup = layout.create("task-e-attempt-1", Limits(), "")
    assert cgroup.relative_path == "task-e-attempt-1"
    assert {key: d.parent for key, d in cgroup.dirs.items()} == layout.parents
    cgroup.remove()
    assert all(parent.is_dir() for parent in layout.parents.values())  # never the layout's own
