"""A private key file made once and reused: development's keys live in the data dir.

`saassy dev` must work with no setting at all, and what was signed or sealed yesterday must
still verify today, so development keeps its random keys in files of the data dir (mode 0600).
A file is refused when anyone but its owner may read it or when another user owns it: such a
key may already be known to someone else.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


class KeyFileError(ValueError):
    """The key file cannot be used; the message names the file, never the key."""


def private_key_text(path: Path, generate: Callable[[], str]) -> str:
    """The file's key, made with `generate()` on first use (safe against a racing twin)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        create_once(path, generate())
    return _read(path)


def create_once(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write `text` to `path` unless it exists: whole or not at all, and of two processes
    starting at once, one wins and the other keeps it."""
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(text.encode("ascii") + b"\n")
            file.flush()
            os.fsync(file.fileno())
        # A hard link never replaces: of two processes starting at once, one key wins.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.geteuid():
            raise KeyFileError(
                f"{path}: owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); "
                "refusing a key someone else controls"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise KeyFileError(
                f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets other users read it; "
                f"make it private with `chmod 600 {path}`"
            )
        return file.read().decode("ascii", errors="replace").strip()
