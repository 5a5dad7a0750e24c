"""Privacy: what Saassy holds about a person, handed over (exports) or erased (deletion).

Exports (`exports.py`, `export_*.py`): a ZIP of every row held about the caller or about an
organization they own, built in the background, stored with the artifacts, announced by
e-mail and removed at expiry. docs/privacy.md documents the archive's layout.
"""
