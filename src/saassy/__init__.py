"""Saassy: launch a SaaS that runs customers' tasks in isolated sandboxes."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up on first use: reading the installed metadata costs ~30 ms, which every `saassy`
    # client command would otherwise pay at start.
    if name != "__version__":
        raise AttributeError(f"module 'saassy' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("saassy")
    except PackageNotFoundError:  # running from a source tree without an install
        found = "0.0.0"
    globals()["__version__"] = found
    return found
