"""What every command shares, and nothing heavy: a console, clean errors, JSON out, a spinner.

Client commands start in a quarter of a second because this module (and every client module)
imports only typer, rich and httpx; server commands import the app inside their functions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

# Soft wrap: ids, URLs and commands stay on one line, ready to copy.
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
UNBOUNDED_WIDTH = 10_000  # what a table may take when printed to a pipe or a file

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The saassy.toml to use (else SAASSY_CONFIG, else ./saassy.toml, else the example).",
        dir_okay=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the embedded database lives (else SAASSY_DATA_DIR or .saassy)."
    ),
]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


TEXT, JSON = OutputFormat.text, OutputFormat.json
OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="text for people; json: the API's JSON, for machines."),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line to standard error and exit (status 1), without a traceback."""
    errors.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(code)


def print_table(table: Table) -> None:
    """A table on standard output: in a terminal it fits the window; piped or redirected,
    every column is printed whole (no id or cell cut short with "…")."""
    if console.is_terminal:
        console.print(table)
    else:
        unbounded = console.options.update_width(UNBOUNDED_WIDTH)
        natural = console.measure(table, options=unbounded).maximum
        # print(width=) is capped at the console's width: a console as wide as the table.
        wide = Console(highlight=False, soft_wrap=True, width=max(console.width, natural))
        wide.print(table)


def print_json(value: Any) -> None:
    """The API's JSON on standard output, nothing else."""
    # Plain write: rich would wrap long strings and break the JSON.
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def waiting(message: str) -> Iterator[Status | None]:
    """A spinner on standard error while the network answers, only where a person watches
    (None elsewhere, and inside another spinner: rich shows one at a time)."""
    if not errors.is_terminal or _spinning:
        yield None
        return
    _spinning.append(True)
    try:
        with errors.status(escape(message)) as status:
            yield status
    finally:
        _spinning.pop()


_spinning: list[bool] = []
