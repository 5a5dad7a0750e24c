"""Saassy: launch a SaaS that runs customers' tasks in isolated sandboxes."""

__version__ = "0.1.0"
