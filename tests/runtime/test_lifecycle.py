"""Start, stream, cancel, exit codes and clean-up of a real sandbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from saassy.runtime.base import EndReason, SandboxRefused
from saassy.runtime.output import OutputPump
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import NamespaceSandbox
from tests.runtime.support import run_code, spec_for


async def test_worker_contract_input_output_events_and_secrets(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import hashlib, json, os, sys
        data = json.load(open(os.environ["SAASSY_INPUT"]))
        json.dump(data, open(os.environ["SAASSY_OUTPUT"] + "/result.json", "w"))
        open(os.environ["SAASSY_EVENTS"], "a").write('{"type": "action", "name": "publish"}\\n')
        secret = open(os.environ["SAASSY_SECRETS"] + "/API_TOKEN").read()
        digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
        print(secret, digest, os.environ["GREETING"], "API_TOKEN" in os.environ)
        try:
            open(os.environ["SAASSY_SECRETS"] + "/API_TOKEN", "w")
        except OSError as exc:
            print("read-only", type(exc).__name__, file=sys.stderr)
        sys.exit(3)
    """
    spec = spec_for(workspace, code).model_copy(
        update={"env": {"GREETING": "hi"}, "secrets": {"API_TOKEN": SecretStr("tok-123")}}
    )
    assert "tok-123" not in repr(spec)
    handle = await runtime.start(spec)
    lines = [(line.stream, line.data) async for line in handle.output()]
    exit_ = await handle.wait()
    await handle.cleanup()
    await handle.cleanup()  # idempotent
    digest = hashlib.sha256(b"tok-123").hexdigest()[:12].encode()
    assert sorted(lines) == [
        ("stderr", b"read-only OSError"),
        ("stdout", b"[redacted:API_TOKEN] " + digest + b" hi False"),  # seen, never shown
    ]
    assert (exit_.reason, exit_.exit_code, exit_.succeeded) == (EndReason.exited, 3, False)
    assert json.loads((workspace / "output" / "result.json").read_text()) == {"hello": "sandbox"}
    assert (workspace / "events.jsonl").read_text() == '{"type": "action", "name": "publish"}\n'
    assert isinstance(handle, NamespaceSandbox)
    assert not handle.work_dir.exists()


async def test_secrets_can_also_be_environment_variables(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import os
        print(os.environ["API_TOKEN"], sorted(os.listdir(os.environ["SAASSY_SECRETS"])))
        assert os.environ["API_TOKEN"] == "tok-9"
    """
    spec = spec_for(workspace, code).model_copy(
        update={"secrets": {"API_TOKEN": SecretStr("tok-9")}, "secrets_as_env": True}
    )
    run_lines = []
    handle = await runtime.start(spec)
    run_lines = [line.data async for line in handle.output()]
    assert (await handle.wait()).succeeded
    await handle.cleanup()
    assert run_lines == [b"[redacted:API_TOKEN] ['API_TOKEN']"]


async def test_kill_ends_a_running_sandbox_within_two_seconds(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("running", flush=True)
        while True:
            time.sleep(0.01)
    """
    handle = await runtime.start(spec_for(workspace, code, timeout_s=60))
    lines = handle.output()
    assert (await anext(lines)).data == b"running"
    started = time.monotonic()
    await handle.kill()
    exit_ = await handle.wait()
    assert time.monotonic() - started < 2.0
    assert exit_.reason is EndReason.killed
    await handle.kill()  # idempotent
    await handle.cleanup()


async def test_usage_is_readable_while_running(runtime: ProcessRuntime, workspace: Path) -> None:
    code = """
        import time
        print("up", flush=True)
        time.sleep(30)
    """
    handle = await runtime.start(spec_for(workspace, code, timeout_s=60))
    assert (await anext(handle.output())).data == b"up"
    usage = await handle.usage()
    assert usage.cpu_seconds > 0
    assert usage.peak_memory_bytes > 0
    assert isinstance(handle, NamespaceSandbox)
    assert handle.cgroup is not None
    if handle.cgroup.peak_memory_bytes() is not None:  # cgroup v1, or v2 with memory.peak
        assert handle._sampler is None, "the kernel keeps the peak: nothing to sample"
    await handle.cleanup()
    assert (await handle.wait()).reason is EndReason.killed


async def test_a_missing_program_is_refused_before_any_sandbox(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    spec = spec_for(workspace, "").model_copy(update={"argv": ("/no/such/program",)})
    with pytest.raises(SandboxRefused) as refused:
        await asyncio.wait_for(runtime.start(spec), 10)
    assert refused.value.code == "program_missing"


async def test_long_lines_are_split_and_output_stays_bounded(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys
        sys.stdout.write("a" * 40000 + "\\nshort\\n")
    """
    run = await run_code(runtime, workspace, code)
    assert [len(line) for line in run.stdout] == [16384, 16384, 7232, 5]


async def test_an_unread_output_drops_lines_instead_of_growing() -> None:
    pump = OutputPump(max_line=8, max_buffered=32)
    reader = asyncio.StreamReader()
    pump.attach("stdout", reader)
    reader.feed_data(b"".join(b"line%03d\n" % i for i in range(100)))
    reader.feed_eof()
    await pump.drained(1.0)
    lines = [line.data async for line in pump.lines()]
    assert lines[:4] == [b"line000", b"line001", b"line002", b"line003"]
    assert lines[-1] == b"[saassy] 96 output lines dropped: reader too slow"


async def test_program_files_are_visible_read_only(
    runtime: ProcessRuntime, workspace: Path, code_dir: Path
) -> None:
    private = code_dir
    (private / "lib.py").write_text("VALUE = 42\n")
    program = private / "main.py"
    program.write_text("import sys; sys.path.insert(0, sys.argv[1]); import lib; print(lib.VALUE)")
    program.chmod(0o666)  # writable by anyone on the host, yet not from inside
    spec = spec_for(workspace, "").model_copy(
        update={
            "argv": ("/usr/bin/python3", str(program), str(private)),
            "read_only_paths": (private,),
        }
    )
    handle = await runtime.start(spec)
    lines = [line.data async for line in handle.output()]
    exit_ = await handle.wait()
    await handle.cleanup()
    assert exit_.succeeded, lines
    assert lines == [b"42"]
    assert b"Read-only" in await _try_write(runtime, workspace, str(program))


async def _try_write(runtime: ProcessRuntime, workspace: Path, path: str) -> bytes:
    code = f"""
        try:
            open({path!r}, "a").write("x")
        except OSError as exc:
            print(exc.strerror)
    """
    spec = spec_for(workspace, code).model_copy(update={"read_only_paths": (Path(path),)})
    handle = await runtime.start(spec)
    lines = [line.data async for line in handle.output()]
    await handle.wait()
    await handle.cleanup()
    return b"".join(lines)
