"""The audit log: an append-only record of security-relevant actions.

Each entry is written by the service that performs the action, in the same unit of work, so
the entry and the change commit or roll back together (a failed sign-in changes nothing else:
its entry is committed before the 401 goes out). One action, one entry.

Entries name people and things by id only. No e-mail address, secret value, key, password or
token goes in; a failed sign-in for an address keeps an HMAC of the address (keyed with the
secret key), so repeated guesses at one address can be told apart without storing it.

GDPR deletion (privacy/erasure_jobs.py) pseudonymizes rather than deletes, so an organization's
log keeps its shape: for the deleted user it draws one random UUID and, in one statement per
column, replaces the user's id wherever it appears (`actor_user_id`, `target_id` with
`target_type` 'user', clearing those entries' IP and user agent), and clears `email_hash` where
it equals the HMAC of the user's address; the log of an organization erased with the account
goes with it. Details never hold a user id or address, so nothing else needs rewriting; API
keys are an organization's, not a user's: those of surviving organizations stay as they are.
"""
