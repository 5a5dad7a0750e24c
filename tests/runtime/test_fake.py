"""The in-memory runtime the dispatcher's unit tests will use."""

from __future__ import annotations

from pathlib import Path

from saassy.runtime.base import EndReason, OutputLine, SandboxSpec, Usage
from saassy.runtime.fake import FakeRuntime, FakeScript


def spec(tmp_path: Path, name: str = "task-1-attempt-1", timeout_s: float = 60) -> SandboxSpec:
    return SandboxSpec.model_validate(
        {
            "name": name,
            "argv": ["run"],
            "input_file": tmp_path / "in.json",
            "output_dir": tmp_path / "out",
            "limits": {"timeout_s": timeout_s},
        }
    )


async def test_scripted_exit_output_files_and_usage(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    usage = Usage(cpu_seconds=1.5, peak_memory_bytes=10, wall_seconds=2.0)
    runtime.script(
        "task-1-attempt-1",
        FakeScript(
            exit_code=2,
            output=(OutputLine("stdout", b"hello"),),
            files={"result.json": b"{}"},
            usage=usage,
        ),
    )
    handle = await runtime.start(spec(tmp_path))
    assert [line.data async for line in handle.output()] == [b"hello"]
    exit_ = await handle.wait()
    assert (exit_.reason, exit_.exit_code) == (EndReason.exited, 2)
    assert await handle.usage() == usage
    assert (tmp_path / "out" / "result.json").read_bytes() == b"{}"
    assert [s.name for s in runtime.started] == ["task-1-attempt-1"]


async def test_a_hanging_script_is_killed_or_times_out(tmp_path: Path) -> None:
    runtime = FakeRuntime(FakeScript(hang=True))
    handle = await runtime.start(spec(tmp_path))
    await handle.kill()
    assert (await handle.wait()).reason is EndReason.killed
    timed = await runtime.start(spec(tmp_path, "other", timeout_s=0.01))
    assert (await timed.wait()).reason is EndReason.timed_out
