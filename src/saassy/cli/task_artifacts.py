"""`saassy tasks artifacts|download`: the files a task left, listed and saved to disk.

An artifact's path was chosen by the customer's code: it is saved only under the directory the
user named, never through `..`, an absolute path or a symlink out of it, and never over an
existing file without --force. Each file is streamed to a temporary name beside its destination,
checked against the listed size and SHA-256, and only then given its name.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import JSON, TEXT, OutputOption, console, fail, print_json, waiting
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_views import task_uuid

if TYPE_CHECKING:
    from saassy.cli.client import ApiClient

TaskIdArgument = Annotated[str, typer.Argument(help="The task's id.", show_default=False)]


def artifacts(
    task_id: TaskIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The files a task's final attempt left in its output directory."""
    with api_client(api_url, api_key) as client:
        listing = client.pages(f"/api/v1/tasks/{task_uuid(task_id)}/artifacts")
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("no artifacts")
        return
    table = Table(box=None, header_style="bold")
    for column in ("PATH", "SIZE", "TYPE", "SHA-256"):
        table.add_column(column, overflow="fold")
    for item in listing["items"]:
        table.add_row(
            escape(item["path"]),
            f"{item['size_bytes']:,}",
            escape(item["content_type"]),
            item["sha256"][:12],
        )
    console.print(table)


def download(
    task_id: TaskIdArgument,
    name: Annotated[
        str | None,
        typer.Argument(
            help="One artifact's path (or id); else every artifact.", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--to",
            show_default=False,
            help="Where to save: for one artifact a file, a directory or - (standard output); "
            "for all, a directory \\[default: ./<artifact's file name>, or ./task-<id>/].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist.")] = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Save a task's artifacts, streamed and checked against their SHA-256."""
    task = task_uuid(task_id)
    with api_client(api_url, api_key) as client:
        found = client.pages(f"/api/v1/tasks/{task}/artifacts")["items"]
        if name is not None:
            chosen = [a for a in found if name in (a["path"], a["id"])]
            if not chosen:
                fail(f"task {task} has no artifact {name!r} (see `saassy tasks artifacts {task}`)")
            if str(output) == "-":
                _to_stdout(client, task, chosen[0])
                return
            plan = [(chosen[0], _one_destination(chosen[0], output))]
        else:
            if not found:
                fail(f"task {task} has no artifacts")
            root = output or Path(f"task-{task}")
            plan = [(artifact, _under(root, artifact["path"])) for artifact in found]
        if not force:
            for _, destination in plan:
                if os.path.lexists(destination):
                    fail(f"{destination} exists: pass --force to replace it")
        for artifact, destination in plan:
            size = _save(client, task, artifact, destination, force=force)
            console.print(f"saved {escape(str(destination))} ({size:,} bytes)")


def safe_relative(path: str) -> Path:
    """An artifact's path as a relative path that stays where it is put, or a clean error."""
    parts = path.split("/")  # as written: PurePosixPath would quietly drop "." and ""
    if any(p in ("", ".", "..") or "\\" in p or not p.isprintable() for p in parts):
        fail(f"refusing the artifact path {path!r}: not a plain relative path")
    return Path(*parts)


def _one_destination(artifact: dict[str, Any], output: Path | None) -> Path:
    file_name = safe_relative(artifact["path"]).name
    if output is None:
        return Path(file_name)
    return output / file_name if output.is_dir() else output


def _under(root: Path, path: str) -> Path:
    destination = root / safe_relative(path)
    # A directory on the way may be a symlink out of root (made by hand, or by an earlier run).
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not destination.parent.resolve().is_relative_to(root.resolve()):
        fail(f"refusing to write {destination}: a directory on its way leads out of {root}")
    return destination


def _to_stdout(client: ApiClient, task: uuid.UUID, artifact: dict[str, Any]) -> None:
    out = sys.stdout.buffer
    with client.download(_download_path(task, artifact)) as response:
        for chunk in response.iter_bytes():
            out.write(chunk)
    out.flush()


def _download_path(task: uuid.UUID, artifact: dict[str, Any]) -> str:
    return f"/api/v1/tasks/{task}/artifacts/{artifact['id']}"


def _save(
    client: ApiClient, task: uuid.UUID, artifact: dict[str, Any], destination: Path, *, force: bool
) -> int:
    """Stream one artifact beside its destination, check it, then give it its name."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        digest, size = hashlib.sha256(), 0
        with waiting(f"downloading {artifact['path']}"), os.fdopen(fd, "wb") as file:
            with client.download(_download_path(task, artifact)) as response:
                for chunk in response.iter_bytes():
                    file.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            os.fchmod(file.fileno(), 0o666 & ~_umask())
        if size != artifact["size_bytes"] or digest.hexdigest() != artifact["sha256"]:
            fail(f"the download of {artifact['path']} was cut short or changed: try again")
        if force:
            os.replace(temporary, destination)
        else:
            try:
                os.link(temporary, destination)  # fails if something took the name meanwhile
            except FileExistsError:
                fail(f"{destination} exists: pass --force to replace it")
    finally:
        Path(temporary).unlink(missing_ok=True)
    return size


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
