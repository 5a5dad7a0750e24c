"""Personal data: an account's export and its deletion (GDPR articles 15, 17 and 20).

Exports (`exports.py`, `export_*.py`): a ZIP of every row held about the caller or about an
organization they own, built in the background, stored with the artifacts, announced by
e-mail and removed at expiry. Deletion (`erasure*.py`): a re-authenticated request ends the
account's sign-ins at once; a background eraser removes or pseudonymizes every row, object
and e-mail about it and writes a receipt to the audit log. docs/privacy.md says what each
keeps and why.
"""
