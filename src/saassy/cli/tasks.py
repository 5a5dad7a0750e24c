"""`saassy tasks`: submit, list, show, follow and cancel tasks through the API with an API key.

Exit codes: 0 done (with --wait/--follow: the task succeeded), 1 an error (the API's, the
network's or the input's), 2 bad usage, 3 the task failed, 4 it timed out, 5 it was canceled,
130 interrupted while waiting (the task goes on).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saassy.cli import task_artifacts
from saassy.cli.common import (
    JSON,
    TEXT,
    OutputOption,
    console,
    errors,
    fail,
    print_json,
    print_table,
)
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_status import TaskStatus
from saassy.cli.task_views import (
    WIDE_TABLE_COLUMNS,
    known_status,
    outcome_line,
    task_panel,
    task_table,
    task_uuid,
)

if TYPE_CHECKING:
    from saassy.cli.client import ApiClient

app = typer.Typer(
    help="Submit, list, follow and cancel tasks (through the API).",
    epilog="Exit codes: 0 done (the task succeeded, with --wait or --follow), 1 error, "
    "2 bad usage, 3 the task failed, 4 it timed out, 5 it was canceled, 130 interrupted.",
    no_args_is_help=True,
)

EXIT_CODES = {
    TaskStatus.succeeded: 0,
    TaskStatus.failed: 3,
    TaskStatus.timed_out: 4,
    TaskStatus.canceled: 5,
}
TaskIdArgument = Annotated[str, typer.Argument(help="The task's id.", show_default=False)]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait until the task ends.")]
FollowOption = Annotated[
    bool, typer.Option("--follow", "-f", help="Stream the task's logs until it ends.")
]


@contextmanager
def task_api(api_url: str | None, api_key: str | None) -> Iterator[ApiClient]:
    """The API for the task commands: Ctrl-C while waiting leaves the task running."""
    with api_client(
        api_url,
        api_key,
        interrupted="interrupted: the task goes on; see it with `saassy tasks show <id>`",
    ) as client:
        yield client


def read_input(value: str) -> Any:
    """JSON given inline, from a file (`@path`) or from standard input (`-`)."""
    source = "--input"
    if value == "-":
        text, source = sys.stdin.read(), "standard input"
    elif value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the input file {path}: {getattr(exc, 'strerror', None) or exc}")
        source = str(path)
    else:
        text = value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{source} is not valid JSON: {exc}")


def exit_for(task: dict[str, Any]) -> None:
    status = known_status(task.get("status"))
    code = EXIT_CODES.get(status, 1) if status else 1
    if code:
        raise typer.Exit(code)


@app.command()
def submit(
    task_type: Annotated[str, typer.Argument(metavar="TYPE", help="A task type, e.g. echo.")],
    input_: Annotated[
        str | None,
        typer.Option("--input", "-i", help="The input: JSON, @file, or - for standard input."),
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", min=1, help="Seconds (else the type's default).")
    ] = None,
    priority: Annotated[
        int, typer.Option(min=-100, max=100, help="Higher runs first among your tasks.")
    ] = 0,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Retry safely: the same key answers the same task."),
    ] = None,
    wait: WaitOption = False,
    follow: FollowOption = False,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a task; with --wait or --follow, exit 0 only if it succeeds."""
    body: dict[str, Any] = {"type": task_type, "priority": priority}
    if input_ is not None:
        body["input"] = read_input(input_)
    if timeout is not None:
        body["timeout_s"] = timeout
    with task_api(api_url, api_key) as client:
        queued = client.submit(body, idempotency_key=idempotency_key)
        task = _watch(client, queued, wait=wait, follow=follow, as_json=output is JSON)
    if task is not None:
        show_outcome(task, as_json=output is JSON)


@app.command()
def rerun(
    task_id: TaskIdArgument,
    wait: WaitOption = False,
    follow: FollowOption = False,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a new task with the type, input, priority and timeout of an earlier one."""
    with task_api(api_url, api_key) as client:
        earlier = client.task(task_uuid(task_id))
        body = {key: earlier[key] for key in ("type", "input", "priority", "timeout_s")}
        queued = client.submit(body)
        if output is not JSON:
            errors.print(f"task {queued['id']} runs task {earlier['id']} again")
        task = _watch(client, queued, wait=wait, follow=follow, as_json=output is JSON)
    if task is not None:
        show_outcome(task, as_json=output is JSON)


def _watch(
    client: ApiClient, task: dict[str, Any], *, wait: bool, follow: bool, as_json: bool
) -> dict[str, Any] | None:
    """A queued task: said and left (None), or waited for until it ends (the ended task)."""
    from saassy.cli.task_follow import await_end, follow_to_end

    task_id = uuid.UUID(task["id"])
    if not (wait or follow):
        if as_json:
            print_json(task)
        else:
            console.print(f"queued task {task_id} ({task['type']})")
            errors.print(f"follow it: saassy tasks logs {task_id} --follow")
        return None
    if not as_json:
        errors.print(f"queued task {task_id} ({task['type']})")
    if follow:
        return follow_to_end(client, task_id, logs_to=sys.stderr if as_json else sys.stdout)
    return await_end(client, task_id)


@app.command("list")
def list_tasks(
    status: Annotated[
        list[TaskStatus] | None,
        typer.Option("--status", "-s", help="Only tasks in this status (repeat for several)."),
    ] = None,
    task_type: Annotated[str | None, typer.Option("--type", "-t", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after a previous listing (its next cursor).")
    ] = None,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The organization's tasks, newest first."""
    items: list[dict[str, Any]] = []
    with task_api(api_url, api_key) as client:
        while len(items) < limit:
            page = client.list_tasks(
                statuses=[str(s) for s in status or ()],
                task_type=task_type,
                limit=min(100, limit - len(items)),
                cursor=cursor,
            )
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if output is JSON:
        print_json({"items": items, "next_cursor": cursor})
    elif not items:
        console.print("no tasks")
    else:
        print_table(task_table(items, wide=console.width >= WIDE_TABLE_COLUMNS))
        if cursor:
            errors.print(f"more: saassy tasks list --cursor {cursor}")


@app.command()
def show(
    task_id: TaskIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """One task: status, attempts, timings, usage, error and result."""
    with task_api(api_url, api_key) as client:
        task = client.task(task_uuid(task_id))
    if output is JSON:
        print_json(task)
    else:
        console.print(task_panel(task))


@app.command()
def logs(
    task_id: TaskIdArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the task ends; exit as it did.")
    ] = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A task's output (stdout and stderr) so far, or live with --follow."""
    from saassy.cli.task_follow import follow_to_end

    with task_api(api_url, api_key) as client:
        if not follow:
            sys.stdout.write(client.logs(task_uuid(task_id)))
            return
        task = follow_to_end(client, task_uuid(task_id), logs_to=sys.stdout)
    errors.print(outcome_line(task))
    exit_for(task)


@app.command()
def cancel(
    task_id: TaskIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a task: a queued one at once, a running one within seconds."""
    with task_api(api_url, api_key) as client:
        at_once, task = client.cancel(task_uuid(task_id))
    if output is JSON:
        print_json(task)
    elif at_once:
        console.print(f"canceled task {task['id']}")
    else:
        console.print(f"canceling task {task['id']}: its sandbox is being stopped")


def show_outcome(task: dict[str, Any], *, as_json: bool) -> None:
    """The ended task (as JSON or a panel), then exit as it ended."""
    if as_json:
        print_json(task)
    else:
        console.print(task_panel(task))
    exit_for(task)


app.command()(task_artifacts.artifacts)
app.command()(task_artifacts.download)
