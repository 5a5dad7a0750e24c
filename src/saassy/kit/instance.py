"""Which Saassy installation this is: an id made once and kept in its data dir.

It names the installation's sandbox work root and cgroup parent, so two installations on one host
(a staging and a production, two developers' checkouts) never sweep each other's sandboxes.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from saassy.kit.key_file import create_once

INSTANCE_FILE = "instance-id"
_VALID = re.compile(r"[a-z0-9]{8,32}")


class InstanceIdInvalid(Exception):
    """The data dir's instance-id file holds something else than an id."""


def instance_id(data_dir: Path) -> str:
    """The id kept in `<data_dir>/instance-id`, made on first use (safe when two processes race)."""
    path = data_dir / INSTANCE_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        create_once(path, secrets.token_hex(6), mode=0o644)
    text = path.read_text().strip()
    if not _VALID.fullmatch(text):
        raise InstanceIdInvalid(
            f"{path} does not hold an instance id (8-32 lowercase letters and digits); "
            "delete it to have a new one made"
        )
    return text
