"""Whether a task type's program can be started in the process runtime's sandbox on this host.

The sandbox sees the host's `/usr`, `/bin`, `/sbin` and `/lib*` read-only, and binds any other
absolute file of the command by itself (bwrap.py): a program is there inside only if it is on
the host, so a missing `/usr/bin/python3` is found here, before any task, rather than as
`bwrap: execvp` in a customer's log. A program named without a path is looked up on the
sandbox's PATH and is not checked.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

PROGRAM_MISSING = "program_missing"
PROGRAM_REFUSED = (
    "this task type's program is not installed on this server, so the task was not run; "
    "its operator can see why"
)
SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/", "/lib")


def install_hint(program: str) -> str:
    """What the operator runs to get `program`: Debian's package for its Python, else itself."""
    name = os.path.basename(program)
    if program.startswith(("/usr/bin/", "/bin/")) and name.startswith("python3"):
        return f"apt-get install {name}"
    return f"install {program} on this host"


def missing_program(argv: Sequence[str]) -> str | None:
    """Why argv's program cannot start in the sandbox here, for the operator (None: it can)."""
    if not argv or not argv[0].startswith("/"):
        return None
    program = argv[0]
    real = os.path.realpath(program)
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return f"{program} is not on this host ({install_hint(program)})"
    if not stat.S_ISREG(mode):
        return f"{program} is not a program file ({install_hint(program)})"
    # As root the platform drops each sandbox to another uid: others must be allowed to run it.
    runnable = mode & stat.S_IXOTH if os.geteuid() == 0 else os.access(real, os.X_OK)
    if not runnable:
        return f"{program} is not executable by the sandbox's uid (chmod o+rx {real})"
    if program.startswith(SYSTEM_DIRS) and not real.startswith(SYSTEM_DIRS):
        return (
            f"{program} links to {real}, outside the system dirs a sandbox sees "
            f"({install_hint(program)})"
        )
    return None
