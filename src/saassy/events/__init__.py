"""Live task events (status changes, log lines) for SSE: in memory, or over Redis pub/sub."""
