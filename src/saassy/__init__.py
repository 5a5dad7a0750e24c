"""Saassy: launch a SaaS that runs customers' tasks in isolated sandboxes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saassy")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
