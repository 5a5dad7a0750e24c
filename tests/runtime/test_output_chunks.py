"""The output contract in a real sandbox: whole lines in order, many at a time, redacted across
reads, split when too long, capped with a marker, and live."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest
from pydantic import SecretStr

from saassy.runtime.base import OutputChunk, SandboxHandle, SandboxSpec
from saassy.runtime.process import ProcessRuntime
from tests.runtime.support import spec_for

SECRET = "tok-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


async def chunks_of(runtime: ProcessRuntime, spec: SandboxSpec) -> list[OutputChunk]:
    handle = await runtime.start(spec)
    try:
        chunks = [chunk async for chunk in handle.output_chunks()]
        assert (await handle.wait()).succeeded, chunks[-3:]
    finally:
        await handle.cleanup()
    return chunks


def lines(chunks: list[OutputChunk], stream: str | None = None) -> list[bytes]:
    """Every line, without its newline; each chunk holds whole lines only."""
    found = []
    for chunk in chunks:
        assert chunk.data.endswith(b"\n"), chunk.data[-40:]
        if stream is None or chunk.stream == stream:
            found.extend(chunk.data[:-1].split(b"\n"))
    return found


async def test_lines_come_in_order_tagged_by_stream_and_many_per_chunk(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys, time
        for i in range(3):  # two pipes: only writes apart in time have an order between them
            print(f"out {i}", flush=True)
            time.sleep(0.05)
            print(f"err {i}", file=sys.stderr, flush=True)
            time.sleep(0.05)
        sys.stdout.write("".join(f"line {i}\\n" for i in range(100_000)))
        sys.stdout.write("no newline at the end")
    """
    chunks = await chunks_of(runtime, spec_for(workspace, code))
    assert [(c.stream, c.data) for c in chunks[:6]] == [
        ("stdout", b"out 0\n"),
        ("stderr", b"err 0\n"),
        ("stdout", b"out 1\n"),
        ("stderr", b"err 1\n"),
        ("stdout", b"out 2\n"),
        ("stderr", b"err 2\n"),
    ]
    expected = [f"line {i}".encode() for i in range(100_000)] + [b"no newline at the end"]
    assert lines(chunks[6:], "stdout") == expected
    assert len(chunks) < 100  # read in large pieces, not a line at a time


async def test_a_secret_written_across_two_reads_is_still_redacted(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys, time
        secret = open("/saassy/secrets/TOKEN").read()
        sys.stdout.write("x" * 100 + "\\n" + "before " + secret[:10])
        sys.stdout.flush()
        time.sleep(0.3)  # the platform reads the first half alone
        sys.stdout.write(secret[10:] + " after\\n")
        sys.stdout.flush()
        time.sleep(0.3)
        sys.stdout.write("y" * 20000 + secret + "\\n")  # cut at 16 KiB, never inside the secret
    """
    spec = spec_for(workspace, code).model_copy(update={"secrets": {"TOKEN": SecretStr(SECRET)}})
    chunks = await chunks_of(runtime, spec)
    joined = b"".join(chunk.data for chunk in chunks)
    assert SECRET.encode() not in joined
    assert SECRET[:10].encode() not in joined
    assert SECRET[10:].encode() not in joined
    found = lines(chunks)
    assert found[:2] == [b"x" * 100, b"before [redacted:TOKEN] after"]
    assert found[2:] == [b"y" * 16384, b"y" * 3616 + b"[redacted:TOKEN]"]


async def test_a_very_long_line_is_split_into_pieces_of_16_kib(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys
        sys.stdout.write("a" * (3 * 1024 * 1024 + 5) + "\\nshort")
    """
    found = lines(await chunks_of(runtime, spec_for(workspace, code)))
    assert found == [b"a" * 16384] * 192 + [b"aaaaa", b"short"]


async def test_output_past_the_cap_is_drained_counted_and_marked(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys
        block = ("x" * 99 + "\\n") * 10_000
        for _ in range(20):  # 20 MB; only the first 64 KiB are kept
            sys.stdout.write(block)
        print("the program ends normally")
    """
    spec = spec_for(workspace, code).model_copy(update={"max_log_bytes": 64 * 1024})
    chunks = await chunks_of(runtime, spec)
    kept = lines([c for c in chunks if c.stream == "stdout"])
    assert kept == [b"x" * 99] * 655  # whole lines within 64 KiB
    notes = [c.data for c in chunks if c.stream == "system"]
    printed = 20 * 1_000_000 + len(b"the program ends normally\n")
    assert notes == [
        b"[saassy] log truncated after 0.0625 MiB\n",
        f"[saassy] {printed - 655 * 100} more bytes of output were read but not kept\n".encode(),
    ]
    assert chunks[-2].stream == "system"  # the marker comes right after the last kept line


async def test_a_consumer_that_reads_slowly_loses_nothing(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import sys
        sys.stdout.write("".join(f"{i:09d}\\n" for i in range(1_200_000)))  # 12 MB at once
    """
    spec = spec_for(workspace, code).model_copy(update={"max_log_bytes": 16 * 1024 * 1024})
    handle = await runtime.start(spec)
    chunks = []
    try:
        async for chunk in handle.output_chunks():
            chunks.append(chunk)
            await asyncio.sleep(0.02)  # slower than the program: the pump waits for us
        assert (await handle.wait()).succeeded
    finally:
        await handle.cleanup()
    assert lines(chunks) == [f"{i:09d}".encode() for i in range(1_200_000)]


async def test_a_line_printed_alone_arrives_while_the_program_still_runs(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import time
        print("alone", flush=True)
        time.sleep(60)
    """
    handle = await runtime.start(spec_for(workspace, code))
    try:
        first = await asyncio.wait_for(anext(aiter(handle.output_chunks())), 10)
        assert first == OutputChunk("stdout", b"alone\n")
        assert not await _ended(handle)
    finally:
        await handle.cleanup()


async def _ended(handle: SandboxHandle) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(handle.wait()), 0.1)
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize(
    "printing",
    [
        "sys.stdout.write('x' * (64 * 1024 * 1024))",  # one line, no newline ever
        "for _ in range(64): sys.stdout.write('y\\n' * (512 * 1024))",  # 32 million lines
    ],
)
async def test_memory_stays_flat_whatever_the_output(
    runtime: ProcessRuntime, workspace: Path, printing: str
) -> None:
    code = f"""
        import sys
        {printing}
    """
    spec = spec_for(workspace, code).model_copy(update={"max_log_bytes": 256 * 1024 * 1024})
    received = 0
    tracemalloc.start()
    handle = await runtime.start(spec)
    try:
        await asyncio.sleep(0.3)  # the program prints at full speed while nobody reads
        async for chunk in handle.output_chunks():
            received += len(chunk.data)
        _, peak = tracemalloc.get_traced_memory()
        assert (await handle.wait()).succeeded
    finally:
        tracemalloc.stop()
        await handle.cleanup()
    assert received >= 64 * 1024 * 1024  # all of it came
    assert peak < 16 * 1024 * 1024  # within the reader's, the pump's and the queue's bounds
