"""Where the example task types' programs are: `{workers}` in a task type's command.

They live in the repository's top-level `workers/` (with the images and programs of later
example types, which are not Python package data). A wheel ships that directory as
`saassy/_workers` (hatch force-include); a source checkout or editable install uses it in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import saassy

PACKAGE_DIR = Path(saassy.__file__).resolve().parent


def workers_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The installed copy if there is one, else the checkout's `workers/`."""
    packaged = package_dir / "_workers"
    if packaged.is_dir():
        return packaged
    return package_dir.parent.parent / "workers"


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach and read `path` (the sandbox uid must)."""
    if any(not parent.stat().st_mode & 0o001 for parent in path.parents):
        return False
    return all(item.stat().st_mode & 0o004 for item in [path, *path.rglob("*")])


def sandbox_workers_dir(staging_root: Path | None, source: Path | None = None) -> Path:
    """The workers where a sandbox can read them: in place, or a fresh copy under `staging_root`.

    A checkout under a private home (0700) is out of reach of the sandbox's unprivileged uid.
    """
    source = source or workers_dir()
    if staging_root is None or not source.is_dir() or _reachable_by_others(source):
        return source
    copy = staging_root / "workers"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    for item in [copy, *copy.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return copy
