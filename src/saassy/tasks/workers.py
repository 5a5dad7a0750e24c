"""Where the example task types' programs are: `{workers}` in a task type's command.

They live in the repository's top-level `workers/` (with the images and programs of later
example types, which are not Python package data). A wheel ships that directory as
`saassy/_workers` (hatch force-include); a source checkout or editable install uses it in place.
"""

from __future__ import annotations

from pathlib import Path

import saassy

PACKAGE_DIR = Path(saassy.__file__).resolve().parent


def workers_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The installed copy if there is one, else the checkout's `workers/`."""
    packaged = package_dir / "_workers"
    if packaged.is_dir():
        return packaged
    return package_dir.parent.parent / "workers"
