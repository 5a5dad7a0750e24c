"""The engine suites both runtimes pass: a `runtime_kind` ("process" or "docker"), the settings
and runtime for each, and a test catalog's command task types as image ones for docker.

The docker runtime runs images only (a `command` is refused at load), so each command becomes
an image FROM saassy/python:test whose CMD is that command: built once per machine (its tag is
the command's hash), a second or so each.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tomllib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from docker.errors import ImageNotFound

from saassy.config import Settings
from saassy.runtime.base import EgressGateway, Runtime
from saassy.runtime.docker import DockerRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.docker_support import docker_runtime, python_image
from tests.runtime.support import own_process_runtime, require_host_python

RUNTIME_KINDS = ["process", "docker"]
COMMAND_IMAGE = "saassy/command"


def command_image(runtime: DockerRuntime, command: list[str]) -> str:
    """An image that runs `command` in the Python image: its CMD, nothing copied."""
    client = runtime.host.client
    python = python_image(runtime)
    base_id = client.images.get(python).id or ""  # rebuilt: its command images are too
    digest = hashlib.sha256(json.dumps([base_id, *command]).encode()).hexdigest()[:16]
    tag = f"{COMMAND_IMAGE}:{digest}"
    with contextlib.suppress(ImageNotFound):
        client.images.get(tag)
        return tag
    dockerfile = f"FROM {python}\nCMD {json.dumps(command)}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    return tag


def image_catalog(source: Path, types: Iterable[str], out_dir: Path) -> Path:
    """`source` with only `types`, each command replaced by an image that runs it."""
    runtime = docker_runtime()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
        wanted = set(types)
        task_types = {}
        for name, task_type in raw.get("task_types", {}).items():
            if name in wanted:
                command = task_type.pop("command")
                task_types[name] = {**task_type, "image": command_image(runtime, command)}
        raw["task_types"] = task_types
    finally:
        runtime.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"image-{source.name}"
    path.write_text(to_toml(raw), encoding="utf-8")
    return path


def settings_for(
    kind: str,
    settings_factory: Callable[..., Settings],
    catalog: Path,
    types: Iterable[str],
    tmp_path: Path,
) -> Settings:
    if kind == "process":
        return settings_factory(config=catalog)
    converted = image_catalog(catalog, types, tmp_path / "catalogs")
    return settings_factory(config=converted, runtime="docker")


@asynccontextmanager
async def sandbox_runtime(kind: str, egress: EgressGateway | None = None) -> AsyncIterator[Runtime]:
    """A real runtime of this kind, with what tests of it need (else a skip; in CI a failure);
    `egress`: the proxy its sandboxes with network reach the outside through."""
    if kind == "process":
        require_host_python()
        async with own_process_runtime(egress) as runtime:
            require_isolation(runtime)
            yield runtime
        return
    docker: DockerRuntime = docker_runtime(egress=egress)
    try:
        python_image(docker)
        yield docker
    finally:
        docker.close()


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):  # JSON's escapes are TOML's, but for DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def to_toml(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """A parsed catalog written back: values first, then each sub-table under its header."""
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, dict):
            path = (*prefix, key)
            text += f"\n[{'.'.join(json.dumps(part) for part in path)}]\n"
            text += to_toml(value, path)
    return text
