"""The credential `saassy login` stores: one API, with an API key or a session's token pair.

It lives in `credentials.json` in the user's config directory (`$XDG_CONFIG_HOME/saassy`, else
`~/.config/saassy`; `typer.get_app_dir`), the directory 0700 and the file 0600, and is always
replaced whole (written beside it, then renamed), so a crash or a second process never leaves half
a file. A refresh happens under a lock: two commands refreshing at once would spend the same
refresh token twice, and the API revokes a reused one's whole family (a log-out for both).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import typer

DEFAULT_API_URL = "http://127.0.0.1:8000"  # where `saassy dev` listens
FILE_NAME = "credentials.json"
# Refresh a little before the access token expires, not on the first 401 after it.
EXPIRY_MARGIN_S = 30


class CredentialsUnreadable(Exception):
    """The stored credentials exist but cannot be used (not ours, corrupt, too open)."""


@dataclass(frozen=True)
class Credentials:
    """What a client command authenticates with; never printed (its repr hides the secrets)."""

    api_url: str
    kind: Literal["api_key", "session"]
    api_key: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = None  # Unix time of the access token's end
    email: str | None = None

    def __repr__(self) -> str:
        return f"Credentials({self.api_url!r}, {self.kind})"

    @property
    def bearer(self) -> str:
        """The value of the Authorization header, after `Bearer `."""
        secret = self.api_key if self.kind == "api_key" else self.access_token
        if not secret:
            raise CredentialsUnreadable("the stored login holds no key or token: log in again")
        return secret

    @property
    def expired(self) -> bool:
        """A session whose access token is (about to be) past its end."""
        return (
            self.kind == "session"
            and self.expires_at is not None
            and time.time() >= self.expires_at - EXPIRY_MARGIN_S
        )

    def refreshed(self, pair: dict[str, Any]) -> Credentials:
        """The same session with the pair `POST /api/v1/auth/refresh` answered."""
        return replace(
            self,
            access_token=str(pair["access_token"]),
            refresh_token=str(pair["refresh_token"]),
            expires_at=time.time() + float(pair["expires_in"]),
        )


def config_dir() -> Path:
    return Path(typer.get_app_dir("saassy"))


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def load() -> Credentials | None:
    """The stored credentials, or None when nobody logged in."""
    path = credentials_path()
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_mode & 0o077:
                raise CredentialsUnreadable(
                    f"{path} can be read by other users: run `saassy login` again "
                    "(it writes the file 0600)"
                )
            data = json.loads(file.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CredentialsUnreadable(f"cannot read {path}: {exc}") from None
    try:
        fields = {name: data[name] for name in Credentials.__dataclass_fields__ if name in data}
        credentials = Credentials(**fields)
        credentials.bearer  # noqa: B018 - a file without its secret is no credential
    except (TypeError, CredentialsUnreadable):
        raise CredentialsUnreadable(f"{path} is not a saassy login: log in again") from None
    return credentials


def save(credentials: Credentials) -> Path:
    """Store the credentials in place of any before: directory 0700, file 0600, atomically."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask, and may predate us
    # mkstemp creates the file 0600 before a byte is written.
    fd, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(asdict(credentials), file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / FILE_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return directory / FILE_NAME


def delete() -> bool:
    """Forget the stored credentials; False when there were none."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True


@contextmanager
def refresh_lock() -> Iterator[None]:
    """Only one process at a time refreshes the stored session."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / ".refresh.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
