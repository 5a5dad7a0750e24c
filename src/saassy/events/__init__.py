"""Live task events (status changes, log lines) for SSE: in memory now, Redis pub/sub later."""
