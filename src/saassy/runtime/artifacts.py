"""Taking files out of an output dir the sandbox controlled, without trusting anything in it.

Only regular files count. Symlinks, hard links, devices, fifos and sockets are refused, as is any
relative path that resolves outside the dir, and any name that is not UTF-8 text without control
characters. Files are opened with O_NOFOLLOW and checked against the stat taken while listing, so
a swap between listing and reading is caught. Listing reads entries one at a time and stops at the
limits, so a dir of a million files costs what its first `max_entries` do.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import structlog

# Hard ceilings whatever a task type allows: copy_out stops one past them, so the collector
# still sees that a limit was passed.
MAX_ENTRIES_CEILING = 10_000
MAX_DEPTH_CEILING = 64
# The artifact row's path column holds 1024 characters, and its storage key a prefix too.
MAX_PATH_CHARS = 900
# The platform reads the first MiB of $SAASSY_EVENTS: no more of it is copied to the host.
MAX_EVENTS_FILE_BYTES = 1024 * 1024

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OutputLimits:
    """What one attempt may leave: entries (files and dirs), dir depth, bytes of regular files."""

    max_entries: int
    max_depth: int
    max_bytes: int


class OutputOverLimit(Exception):
    """The output dir passes a limit; listing stopped there. `limit` names which one."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


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


def collect_artifacts(root: Path, limits: OutputLimits) -> ArtifactScan:
    """Every regular file under `root`, symlinks never followed; OutputOverLimit past `limits`.

    Entries are read one at a time (no full listing), so the cost is bounded by the limits,
    not by what the program wrote. Refused names are counted as entries too.
    """
    scan = ArtifactScan(root=root)
    entries = total = 0
    pending: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while pending:
        directory, prefix, depth = pending.pop()
        try:
            listing = os.scandir(directory)
        except FileNotFoundError:
            continue
        with listing:
            for entry in listing:
                entries += 1
                if entries > limits.max_entries:
                    raise OutputOverLimit(
                        "entries", f"wrote more than {limits.max_entries} files and dirs"
                    )
                relative = prefix + entry.name
                if (why := _name_refusal(entry.name, relative)) is not None:
                    scan.refused.append(ArtifactRefused(printable(relative), why))
                elif entry.is_symlink():
                    scan.refused.append(ArtifactRefused(relative, "symlink"))
                elif entry.is_dir(follow_symlinks=False):
                    if depth + 1 > limits.max_depth:
                        raise OutputOverLimit(
                            "depth", f"nested dirs deeper than {limits.max_depth} levels"
                        )
                    pending.append((entry.path, relative + "/", depth + 1))
                elif (refused := _file_refusal(entry)) is not None:
                    scan.refused.append(ArtifactRefused(relative, refused))
                else:
                    size = entry.stat(follow_symlinks=False).st_size
                    total += size
                    if total > limits.max_bytes:
                        raise OutputOverLimit(
                            "bytes", f"wrote more than {limits.max_bytes // 2**20} MB of files"
                        )
                    scan.files.append(OutputFile(relative, size))
    scan.files.sort(key=lambda found: found.relative_path)
    return scan


def printable(name: str) -> str:
    """A name as it may appear in a log line: undecodable bytes and controls escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if not _is_control(c) else f"\\x{ord(c):02x}" for c in text)


def _name_refusal(name: str, relative: str) -> str | None:
    try:
        text = os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return "name is not valid UTF-8"
    if any(_is_control(c) for c in text):
        return "name has a control character"
    if len(relative) > MAX_PATH_CHARS:
        return f"path longer than {MAX_PATH_CHARS} characters"
    return None


def _is_control(char: str) -> bool:
    """C0, DEL and C1: never part of a name a header, a log line or a terminal shows safely."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _file_refusal(entry: os.DirEntry[str]) -> str | None:
    info = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_nlink > 1:
        return "hard link"
    return None


def open_artifact(root: Path, relative_path: str) -> int:
    """An fd for reading the artifact, opened without following a symlink swapped in late."""
    path = resolve_artifact(root, relative_path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactRefused(relative_path, "not a regular file")
    return fd


def copy_out(
    source: Path,
    destination: Path,
    *,
    max_bytes: int,
    max_entries: int = MAX_ENTRIES_CEILING + 1,
    max_depth: int = MAX_DEPTH_CEILING + 1,
) -> list[str]:
    """Copy a sandbox's staged output to the host: regular files and dirs; symlinks kept as links.

    Links are recreated, never followed, so `collect_artifacts` reports them as refused. Copying
    stops after `max_entries` entries and `max_depth` levels, one past any task type's limits,
    so the collector still sees the limit passed while the host never copies more. What the
    sandbox's own tmpfs cap does not bound is never copied: a hard link (each would be a full
    copy) or a sparse file (its size is not what it took); their paths are returned. Past
    `max_bytes` in all (what the sandbox could write), OutputTooLarge: the caller keeps nothing.
    """
    destination.mkdir(parents=True, exist_ok=True)
    copied = total = 0
    left_out: list[str] = []
    pending: list[tuple[str, Path, int]] = [(str(source), destination, 0)]
    while pending:
        directory, target_dir, depth = pending.pop()
        with os.scandir(directory) as listing:
            for entry in listing:
                if copied >= max_entries:
                    return left_out
                copied += 1
                target = target_dir / entry.name
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                elif entry.is_dir(follow_symlinks=False):
                    target.mkdir(exist_ok=True)
                    if depth < max_depth:
                        pending.append((entry.path, target, depth + 1))
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_nlink > 1 or info.st_blocks * 512 < info.st_size:
                        left_out.append(_relative(source, Path(entry.path)))
                        continue
                    total += info.st_size
                    if total > max_bytes:
                        raise OutputTooLarge(f"the output holds more than {max_bytes} bytes")
                    copy_file(Path(entry.path), target, exclusive=True)
    return left_out


def take_output(staged: Path, output_dir: Path, events_file: Path | None, disk_mb: int) -> None:
    """After the sandbox ended: its output and events file onto the host, bounded by what the
    sandbox could write. When that fails, the output is what is lost (never a part of it): the
    exit and the usage still count."""
    try:
        left_out = copy_out(staged / "output", output_dir, max_bytes=disk_mb * 2**20)
        if left_out:
            log.warning("sandbox.output_left_out", paths=[printable(p) for p in left_out[:20]])
        if events_file is not None:
            copy_file(staged / "events.jsonl", events_file, max_bytes=MAX_EVENTS_FILE_BYTES)
    except OSError:
        log.exception("sandbox.output_not_copied", output_dir=str(output_dir))
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.mkdir(parents=True, exist_ok=True)


class OutputTooLarge(OSError):
    """A sandbox's output holds more than it could have written: nothing of it is kept."""


def copy_file(
    source: Path, target: Path, *, exclusive: bool = False, max_bytes: int | None = None
) -> None:
    """Copy one regular file (at most `max_bytes` of it), refusing to follow a symlink."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactRefused(source.name, "not a regular file")
        with open(target, "xb" if exclusive else "wb") as writer:
            if max_bytes is None:
                shutil.copyfileobj(reader, writer)
            else:
                writer.write(reader.read(max_bytes))


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
