"""The example programs are staged where the sandbox's unprivileged uid can read them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from saassy.tasks.workers import sandbox_workers_dir


def _workers(root: Path) -> Path:
    source = root / "workers"
    source.mkdir(parents=True)
    (source / "echo.py").write_text("print('hi')\n")
    return source


def test_a_private_checkout_is_copied_to_the_staging_root(tmp_path: Path) -> None:
    private = tmp_path / "home"
    source = _workers(private)
    private.chmod(0o700)
    staging = tmp_path / "staging"
    staging.mkdir()

    staged = sandbox_workers_dir(staging, source)

    assert staged == staging / "workers"
    assert (staged / "echo.py").read_text() == "print('hi')\n"
    assert (staged / "echo.py").stat().st_mode & 0o004


def test_reachable_workers_are_used_in_place(tmp_path: Path) -> None:
    # Under /tmp itself (world-traversable), unlike pytest's private base dir.
    public = Path(tempfile.mkdtemp(prefix="saassy-workers-test-", dir="/tmp"))
    try:
        public.chmod(0o755)
        source = _workers(public)
        source.chmod(0o755)
        (source / "echo.py").chmod(0o644)

        assert sandbox_workers_dir(tmp_path / "staging", source) == source
        assert not (tmp_path / "staging").exists()
    finally:
        shutil.rmtree(public)
