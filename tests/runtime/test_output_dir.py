"""The output dir: its size is capped, and only safe regular files come out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saassy.runtime.artifacts import (
    MAX_EVENTS_FILE_BYTES,
    ArtifactRefused,
    OutputLimits,
    OutputOverLimit,
    collect_artifacts,
    copy_out,
    open_artifact,
    resolve_artifact,
    take_output,
)
from saassy.runtime.process import ProcessRuntime
from tests.runtime.support import run_code

ROOMY = OutputLimits(max_entries=100, max_depth=4, max_bytes=1024)


async def test_filling_the_disk_is_capped(runtime: ProcessRuntime, workspace: Path) -> None:
    code = """
        import os
        written = 0
        try:
            with open(os.environ["SAASSY_OUTPUT"] + "/big.bin", "wb") as big:
                while written < 200 * 1024 * 1024:
                    big.write(b"x" * 1024 * 1024)
                    written += 1024 * 1024
                big.flush()
        except OSError as exc:
            print("stopped", exc.errno, written // (1024 * 1024))
    """
    run = await run_code(runtime, workspace, code, disk_mb=20, memory_mb=256)
    assert run.stdout
    assert run.stdout[0].startswith("stopped 28 ")
    size = (workspace / "output" / "big.bin").stat().st_size
    assert 19 * 1024 * 1024 <= size <= 20 * 1024 * 1024


async def test_sandbox_symlink_to_host_file_is_refused(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import os
        out = os.environ["SAASSY_OUTPUT"]
        os.symlink("/etc/shadow", out + "/shadow")
        os.symlink("/etc", out + "/etc-dir")
        os.makedirs(out + "/nested")
        open(out + "/nested/result.json", "w").write("{}")
    """
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    scan = collect_artifacts(workspace / "output", ROOMY)
    assert [a.relative_path for a in scan.files] == ["nested/result.json"]
    assert sorted((r.relative_path, r.reason) for r in scan.refused) == [
        ("etc-dir", "symlink"),
        ("shadow", "symlink"),
    ]


def test_symlink_to_host_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("do not leak")
    output = tmp_path / "output"
    output.mkdir()
    (output / "leak.txt").symlink_to(secret)
    (output / "ok.txt").write_text("fine")
    scan = collect_artifacts(output, ROOMY)
    assert [a.relative_path for a in scan.files] == ["ok.txt"]
    assert [(r.relative_path, r.reason) for r in scan.refused] == [("leak.txt", "symlink")]
    with pytest.raises(ArtifactRefused, match="symlink"):
        open_artifact(output, "leak.txt")


@pytest.mark.parametrize("path", ["../host-secret", "/etc/passwd", "a/../../host-secret", ""])
def test_paths_escaping_the_dir_are_refused(tmp_path: Path, path: str) -> None:
    (tmp_path / "host-secret").write_text("do not leak")
    output = tmp_path / "output"
    (output / "a").mkdir(parents=True)
    with pytest.raises(ArtifactRefused, match="escapes"):
        resolve_artifact(output, path)


def test_symlinked_parent_dir_cannot_smuggle_a_file_out(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("do not leak")
    output = tmp_path / "output"
    output.mkdir()
    (output / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ArtifactRefused, match="escapes"):
        resolve_artifact(output, "link/secret")


def test_hard_links_and_fifos_are_refused(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    (tmp_path / "host").write_text("host file")
    os.link(tmp_path / "host", output / "hard")
    os.mkfifo(output / "pipe")
    (output / "a.bin").write_bytes(b"a" * 600)
    scan = collect_artifacts(output, ROOMY)
    assert [a.relative_path for a in scan.files] == ["a.bin"]
    assert sorted((r.relative_path, r.reason) for r in scan.refused) == [
        ("hard", "hard link"),
        ("pipe", "not a regular file"),
    ]
    fd = open_artifact(output, "a.bin")
    with os.fdopen(fd, "rb") as artifact:
        assert artifact.read() == b"a" * 600


def test_past_the_total_size_the_scan_stops(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a" * 600)
    (tmp_path / "b.bin").write_bytes(b"b" * 600)
    with pytest.raises(OutputOverLimit, match="more than 0 MB") as over:
        collect_artifacts(tmp_path, ROOMY)
    assert over.value.limit == "bytes"


def test_past_the_file_count_the_scan_stops(tmp_path: Path) -> None:
    for n in range(101):
        (tmp_path / f"{n}.txt").touch()
    with pytest.raises(OutputOverLimit, match="more than 100 files") as over:
        collect_artifacts(tmp_path, ROOMY)
    assert over.value.limit == "entries"


def test_past_the_depth_the_scan_stops(tmp_path: Path) -> None:
    (tmp_path / "1/2/3/4").mkdir(parents=True)
    (tmp_path / "1/2/3/4/deep.txt").touch()
    assert [f.relative_path for f in collect_artifacts(tmp_path, ROOMY).files] == [
        "1/2/3/4/deep.txt"
    ]
    (tmp_path / "1/2/3/4/5").mkdir()
    with pytest.raises(OutputOverLimit, match="deeper than 4 levels"):
        collect_artifacts(tmp_path, ROOMY)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (b"bad-\xff.txt", "name is not valid UTF-8"),
        (b"lone-\xed\xa0\x80.txt", "name is not valid UTF-8"),
        (b"cr\rlf\n.txt", "name has a control character"),
        (b"tab\t.txt", "name has a control character"),
        (b"del\x7f.txt", "name has a control character"),
        ("c1\u0085.txt".encode(), "name has a control character"),
    ],
)
def test_names_that_are_not_clean_text_are_refused(
    tmp_path: Path, name: bytes, reason: str
) -> None:
    with open(os.path.join(os.fsencode(tmp_path), name), "wb") as file:
        file.write(b"x")
    (tmp_path / "\u6587\u4ef6.txt").write_bytes(b"cjk")
    (tmp_path / ("n" * 255)).write_bytes(b"long")
    scan = collect_artifacts(tmp_path, ROOMY)
    assert sorted(f.relative_path for f in scan.files) == ["n" * 255, "\u6587\u4ef6.txt"]
    [refused] = scan.refused
    assert refused.reason == reason
    refused.relative_path.encode("ascii")  # printable in any log line


def test_copying_out_stops_past_the_limits(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    (staged / "a/b/c").mkdir(parents=True)
    for n in range(50):
        (staged / f"{n}.txt").touch()
    copy_out(staged, tmp_path / "few", max_bytes=2**20, max_entries=10, max_depth=10)
    assert len(list((tmp_path / "few").rglob("*"))) == 10
    copy_out(staged, tmp_path / "shallow", max_bytes=2**20, max_entries=100, max_depth=1)
    assert (tmp_path / "shallow/a/b").is_dir()  # one level past: the collector sees it
    assert not (tmp_path / "shallow/a/b/c").exists()


def test_what_the_sandbox_cap_does_not_bound_is_never_copied(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "real.bin").write_bytes(b"x" * 4096)
    os.link(staged / "real.bin", staged / "linked.bin")  # each link would be a full copy
    with open(staged / "sparse.bin", "wb") as sparse:  # a TiB that takes no space
        sparse.truncate(2**40)
    (staged / "fine.txt").write_bytes(b"fine")
    left_out = copy_out(staged, tmp_path / "out", max_bytes=2**20)
    assert sorted(left_out) == ["linked.bin", "real.bin", "sparse.bin"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["fine.txt"]


def test_more_than_the_sandbox_could_write_keeps_nothing(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    (staged / "output").mkdir(parents=True)
    (staged / "output/a.bin").write_bytes(b"x" * 2**20)
    (staged / "output/b.bin").write_bytes(b"x" * 2**20)
    (staged / "events.jsonl").write_bytes(b"{}\n" * 2**20)
    output, events = tmp_path / "output", tmp_path / "events.jsonl"
    take_output(staged, output, events, disk_mb=1)
    assert list(output.iterdir()) == []
    take_output(staged, output, events, disk_mb=4)
    assert sorted(p.name for p in output.iterdir()) == ["a.bin", "b.bin"]
    assert events.stat().st_size == MAX_EVENTS_FILE_BYTES  # the part the platform reads
