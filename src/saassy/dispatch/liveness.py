"""When each executor process of this host was last seen alive: the end of its sandboxes.

A sandbox dies with the process that supervises it (bwrap --die-with-parent), so the moment a
killed process was last alive is when its sandboxes stopped, to within one tick. Each executor
stamps a file of its own (its modification time) every lease-keeper tick: one `utime`, no
database write. Adoption on the same host reads the stamp of a dead executor to bill a lost
attempt's wall time from its real start to that stop, never to its lease's expiry.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

FORGOTTEN_AFTER_S = 24 * 3600  # long past any lease: no attempt of it is left to adopt


class LastSeen:
    """A directory of one stamp file per executor id."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, executor_id: str) -> Path:
        return self.directory / executor_id.replace("/", "_")

    def stamp(self, executor_id: str) -> None:
        """Now: this executor is alive (its sandboxes may still run)."""
        path = self._file(executor_id)
        try:
            os.utime(path)
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.touch()

    def of(self, executor_id: str | None) -> datetime | None:
        """When the executor last stamped, if it ever did on this host."""
        if not executor_id:
            return None
        try:
            stamped = self._file(executor_id).stat().st_mtime
        except OSError:
            return None
        return datetime.fromtimestamp(stamped, UTC)

    def forget(self, executor_id: str) -> None:
        with contextlib.suppress(OSError):
            self._file(executor_id).unlink()

    def forget_old(self) -> None:
        """Drop the stamps of executors gone for a day (their attempts are long adopted)."""
        with contextlib.suppress(OSError):
            for path in self.directory.iterdir():
                with contextlib.suppress(OSError):
                    if time.time() - path.stat().st_mtime > FORGOTTEN_AFTER_S:
                        path.unlink()
