"""Taking files out of an output dir the sandbox controlled, without trusting anything in it.

Only regular files count. Symlinks, hard links, devices, fifos and sockets are refused, as is any
relative path that resolves outside the dir. Files are opened with O_NOFOLLOW and checked against
the stat taken while listing, so a swap between listing and reading is caught.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class ArtifactRefused(Exception):
    """A path in the output dir that must not be read."""

    def __init__(self, relative_path: str, reason: str) -> None:
        super().__init__(f"{relative_path}: {reason}")
        self.relative_path = relative_path
        self.reason = reason


@dataclass(frozen=True)
class OutputFile:
    """A regular file found in an output dir (an `Artifact` once stored with its row)."""

    relative_path: str
    size: int


@dataclass
class ArtifactScan:
    """What `collect_artifacts` accepted and what it refused, with reasons."""

    root: Path
    files: list[OutputFile] = field(default_factory=list)
    refused: list[ArtifactRefused] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(artifact.size for artifact in self.files)


def resolve_artifact(root: Path, relative_path: str) -> Path:
    """The host path of `relative_path` under `root`, refusing escapes and non-regular files."""
    pure = PurePosixPath(relative_path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ArtifactRefused(relative_path, "path escapes the output dir")
    base = root.resolve()
    candidate = base.joinpath(*pure.parts)
    try:
        info = candidate.lstat()
    except FileNotFoundError as exc:
        raise ArtifactRefused(relative_path, "no such file") from exc
    if stat.S_ISLNK(info.st_mode):
        raise ArtifactRefused(relative_path, "symlink")
    if not candidate.resolve().is_relative_to(base):
        raise ArtifactRefused(relative_path, "path escapes the output dir")
    if not stat.S_ISREG(info.st_mode):
        raise ArtifactRefused(relative_path, "not a regular file")
    if info.st_nlink > 1:
        raise ArtifactRefused(relative_path, "hard link")
    return candidate


def collect_artifacts(root: Path, *, max_total_bytes: int) -> ArtifactScan:
    """Every regular file under `root` (symlinks are never followed), within a total-size cap."""
    scan = ArtifactScan(root=root)
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames):
            path = Path(directory, name)
            if path.is_symlink():
                scan.refused.append(ArtifactRefused(_relative(root, path), "symlink"))
        for name in sorted(filenames):
            relative = _relative(root, Path(directory, name))
            try:
                path = resolve_artifact(root, relative)
            except ArtifactRefused as refused:
                scan.refused.append(refused)
                continue
            size = path.lstat().st_size
            if scan.total_bytes + size > max_total_bytes:
                scan.refused.append(ArtifactRefused(relative, "total size cap exceeded"))
                continue
            scan.files.append(OutputFile(relative, size))
    return scan


def open_artifact(root: Path, relative_path: str) -> int:
    """An fd for reading the artifact, opened without following a symlink swapped in late."""
    path = resolve_artifact(root, relative_path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactRefused(relative_path, "not a regular file")
    return fd


def copy_out(source: Path, destination: Path) -> None:
    """Copy a sandbox's staged output to the host: regular files and dirs; symlinks kept as links.

    Links are recreated, never followed, so `collect_artifacts` reports them as refused.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for directory, dirnames, filenames in os.walk(source, followlinks=False):
        target_dir = destination / Path(directory).relative_to(source)
        for name in dirnames + filenames:
            path, target = Path(directory, name), target_dir / name
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                target.mkdir(exist_ok=True)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(path), target)
            elif stat.S_ISREG(info.st_mode):
                copy_file(path, target, exclusive=True)


def copy_file(source: Path, target: Path, *, exclusive: bool = False) -> None:
    """Copy one regular file, refusing to follow a symlink at `source`."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactRefused(source.name, "not a regular file")
        with open(target, "xb" if exclusive else "wb") as writer:
            shutil.copyfileobj(reader, writer)


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
