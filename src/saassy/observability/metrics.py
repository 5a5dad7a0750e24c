"""The metrics the processes observe themselves, named from the domain.

Every observation goes through a function here, so no other module touches prometheus-client.
With `PROMETHEUS_MULTIPROC_DIR` set before the process starts, prometheus-client keeps each
value in a file of that directory and a scrape sums the processes (`exposition.py`); the one
gauge counts only live processes (`livesum`). Numbers the database knows (queue depth, backlog)
are not kept here: they are read at scrape time (`queue_collector.py`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `*_created` timestamps double the series for what `resets()` already tells.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds, from a no-op sandbox (milliseconds) to a day-long task.
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Requests no route matched share this label: raw paths would make the series unbounded.
UNMATCHED_ROUTE = "unmatched"

ATTEMPTS = Counter(
    "saassy_attempts",
    "Attempts ended, by task type and outcome (the attempt's final status).",
    ["task_type", "outcome"],
)
TASK_DURATION = Histogram(
    "saassy_task_duration_seconds",
    "An attempt's time in its sandbox, from start to exit, by task type and outcome.",
    ["task_type", "outcome"],
    buckets=DURATION_BUCKETS,
)
SANDBOX_START = Histogram(
    "saassy_sandbox_start_seconds",
    "How long the runtime took to start a sandbox, by runtime.",
    ["runtime"],
    buckets=START_BUCKETS,
)
DISPATCH_LAG = Histogram(
    "saassy_dispatch_lag_seconds",
    "From when a queued task was due (submitted, or its retry backoff over) to its claim.",
    buckets=LAG_BUCKETS,
)
RUNNING_ATTEMPTS = Gauge(
    "saassy_running_attempts",
    "Attempts this process supervises now (summed over live processes).",
    multiprocess_mode="livesum",
)
REQUESTS = Counter(
    "saassy_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "saassy_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


def attempt_ended(task_type: str, outcome: str, sandbox_seconds: float | None) -> None:
    """An attempt's outcome was written; `sandbox_seconds` is None when no sandbox ran."""
    ATTEMPTS.labels(task_type, outcome).inc()
    if sandbox_seconds is not None:
        TASK_DURATION.labels(task_type, outcome).observe(sandbox_seconds)


def sandbox_started(runtime: str, seconds: float) -> None:
    SANDBOX_START.labels(runtime).observe(seconds)


def tasks_claimed(lags_s: list[float]) -> None:
    """The dispatcher claimed tasks that had waited this long since they were due."""
    for lag in lags_s:
        DISPATCH_LAG.observe(max(0.0, lag))


def supervising(change: int) -> None:
    """+1 when a supervisor starts an attempt, -1 when it lets go of it."""
    RUNNING_ATTEMPTS.inc(change)


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_DURATION.labels(method, route).observe(seconds)
