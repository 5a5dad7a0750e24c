"""The output dir: its size is capped, and only safe regular files come out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saassy.runtime.artifacts import (
    ArtifactRefused,
    collect_artifacts,
    open_artifact,
    resolve_artifact,
)
from saassy.runtime.process import ProcessRuntime
from tests.runtime.support import run_code


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
    scan = collect_artifacts(workspace / "output", max_total_bytes=1024)
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
    scan = collect_artifacts(output, max_total_bytes=1024)
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


def test_hard_links_fifos_and_the_size_cap(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    (tmp_path / "host").write_text("host file")
    os.link(tmp_path / "host", output / "hard")
    os.mkfifo(output / "pipe")
    (output / "a.bin").write_bytes(b"a" * 600)
    (output / "b.bin").write_bytes(b"b" * 600)
    scan = collect_artifacts(output, max_total_bytes=1000)
    assert [a.relative_path for a in scan.files] == ["a.bin"]
    assert sorted((r.relative_path, r.reason) for r in scan.refused) == [
        ("b.bin", "total size cap exceeded"),
        ("hard", "hard link"),
        ("pipe", "not a regular file"),
    ]
    fd = open_artifact(output, "a.bin")
    with os.fdopen(fd, "rb") as artifact:
        assert artifact.read() == b"a" * 600
