"""How the task commands show tasks: a table of summaries, a panel for one task."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from saassy.cli.common import fail
from saassy.cli.task_status import TaskStatus

STATUS_STYLES = {
    TaskStatus.queued: "blue",
    TaskStatus.dispatched: "blue",
    TaskStatus.running: "cyan",
    TaskStatus.succeeded: "green",
    TaskStatus.failed: "red",
    TaskStatus.timed_out: "red",
    TaskStatus.canceled: "yellow",
}
INPUT_PREVIEW_CHARS = 200
MEASURED = frozenset({"cpu_seconds", "peak_memory_mb", "wall_seconds"})
WIDE_TABLE_COLUMNS = 110


def task_uuid(value: str) -> uuid.UUID:
    """A task id from the command line, or a clean error."""
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"not a task id: {value!r}")


def known_status(value: object) -> TaskStatus | None:
    """The status, or None for one this CLI does not know (a newer server)."""
    try:
        return TaskStatus(str(value))
    except ValueError:
        return None


def styled_status(status: str) -> Text:
    known = known_status(status)
    style = STATUS_STYLES[known] if known else ""
    return Text(status, style=f"bold {style}".strip())


def is_terminal(task: dict[str, Any]) -> bool:
    status = known_status(task.get("status"))
    return status is not None and status.terminal


def moment(value: str | None, *, seconds: bool = True) -> str:
    """An API time as `YYYY-MM-DD HH:MM:SSZ` (UTC)."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime(
            "%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%M"
        )
    except ValueError:
        return value


def duration(task: dict[str, Any]) -> str:
    started, finished = task.get("started_at"), task.get("finished_at")
    if not started or not finished:
        return "-"
    try:
        seconds = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
    except ValueError:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def task_table(tasks: list[dict[str, Any]], *, wide: bool) -> Table:
    """Summaries, one row per task, the id in full (ready to copy); `wide` adds time and error."""
    table = Table(header_style="bold", box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("TRIES", justify="right", no_wrap=True)
    table.add_column("CREATED (UTC)", no_wrap=True)
    if wide:
        table.add_column("TOOK", justify="right", no_wrap=True)
        table.add_column("ERROR", overflow="fold")
    for task in tasks:
        row: list[str | Text] = [
            str(task["id"]),
            escape(str(task["type"])),
            styled_status(str(task["status"])),
            f"{task['attempt_count']}/{task['max_attempts']}",
            moment(task.get("created_at"), seconds=False),
        ]
        if wide:
            row += [duration(task), escape(str(task.get("error_code") or ""))]
        table.add_row(*row)
    return table


def usage_line(usage: dict[str, Any]) -> str:
    parts = [
        f"cpu {float(usage.get('cpu_seconds') or 0):.2f} s",
        f"peak memory {float(usage.get('peak_memory_mb') or 0):.1f} MB",
        f"wall {float(usage.get('wall_seconds') or 0):.2f} s",
    ]
    metered = usage.get("metered") or {}
    parts += [f"{name} {metered[name]:g}" for name in metered if name not in MEASURED]
    return " · ".join(parts)


def task_panel(task: dict[str, Any]) -> Panel:
    """One task: status, attempts, timings, usage, error and result."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    status = styled_status(str(task["status"]))
    if task.get("cancel_requested_at") and not is_terminal(task):
        status.append("  (cancel requested)", style="yellow")
    facts.add_row("type", escape(str(task["type"])))
    facts.add_row("status", status)
    attempts = f"{task['attempt_count']} of at most {task['max_attempts']}"
    if lost := task.get("platform_losses"):
        attempts += f", plus {lost} run again after the platform lost it"
    facts.add_row("attempts", attempts)
    facts.add_row("priority", str(task["priority"]))
    facts.add_row("timeout", f"{task['timeout_s']} s")
    facts.add_row("created", moment(task.get("created_at")))
    facts.add_row("started", moment(task.get("started_at")))
    facts.add_row("finished", f"{moment(task.get('finished_at'))}  (took {duration(task)})")
    facts.add_row("usage", usage_line(task.get("usage") or {}))
    if task.get("error_code") or task.get("error"):
        error = ": ".join(str(p) for p in (task.get("error_code"), task.get("error")) if p)
        facts.add_row("error", Text(error, style="red"))
    facts.add_row("input", escape(_preview(task.get("input"))))
    parts: list[RenderableType] = [facts]
    if len(task.get("attempts") or []) > 1:
        parts += [Text(""), attempts_table(task["attempts"])]
    parts += [Text(""), Text("result", style="bold")]
    result = task.get("result")
    parts.append(JSON.from_data(result) if result is not None else Text("-"))
    return Panel(Group(*parts), title=f"task {task['id']}", title_align="left", expand=False)


def attempts_table(attempts: list[dict[str, Any]]) -> Table:
    table = Table(title="attempts", title_justify="left", box=None, header_style="bold")
    for column in ("#", "STATUS", "EXIT", "END", "TOOK", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR", overflow="fold")
    for attempt in attempts:
        exit_code = attempt.get("exit_code")
        table.add_row(
            str(attempt["number"]),
            styled_status(str(attempt["status"])),
            "-" if exit_code is None else str(exit_code),
            escape(str(attempt.get("end_reason") or "-")),
            duration(attempt),
            escape(str(attempt.get("error") or "")),
        )
    return table


def outcome_line(task: dict[str, Any]) -> Text:
    """`task <id> succeeded in 1.2 s` (or how it ended)."""
    line = Text(f"task {task['id']} ")
    line.append_text(styled_status(str(task["status"])))
    if (took := duration(task)) != "-":
        line.append(f" in {took}")
    return line


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > INPUT_PREVIEW_CHARS:
        return text[: INPUT_PREVIEW_CHARS - 1] + "…"
    return text
