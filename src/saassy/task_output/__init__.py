"""What tasks leave behind, for their owners: logs (plain or followed), artifacts, live events."""
