"""saassy/python:test: the base image plus this host's Debian /usr/bin/python3, for the suites
both runtimes pass (their programs run `/usr/bin/python3 -I -c ...`). No registry: the
interpreter, the libraries `ldd` names for it and its extension modules, and its standard
library are copied from the host into one tar with the busybox base image's files. The image
carries a label hashing what went in, so it is built once per machine and again only when the
host's Python (or the base image) changes; a build takes a few seconds.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from docker import DockerClient
from docker.errors import ImageNotFound

PYTHON_IMAGE = "saassy/python:test"
HOST_PYTHON = Path("/usr/bin/python3")  # apt's, never a pyenv or venv one: its paths are fixed
CONTENT_LABEL = "saassy.content"
RECIPE = "2"  # bump when what goes in changes in a way the files' stats do not show
# Parts of the standard library no sandboxed test program imports: a smaller, faster build.
LEFT_OUT = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "pydoc_data",
    "ensurepip",
    "site-packages",
    "dist-packages",
}


class PythonImageUnavailable(Exception):
    """This host cannot give the image its interpreter; one line says what to install."""


def _interpreter() -> Path:
    if not HOST_PYTHON.exists():
        raise PythonImageUnavailable(f"no {HOST_PYTHON}: apt-get install python3")
    return HOST_PYTHON.resolve()


def _stdlib(interpreter: Path) -> Path:
    stdlib = Path("/usr/lib") / interpreter.name  # Debian's /usr/lib/python3.X
    if not (stdlib / "os.py").exists():
        raise PythonImageUnavailable(f"no standard library at {stdlib}: apt-get install python3")
    return stdlib


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(stdlib):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if d not in LEFT_OUT and not d.startswith("config-"))
        for name in sorted(files):
            yield here / name


def _libraries(binaries: list[Path]) -> set[Path]:
    """Every shared library these binaries load, as the loader names them, and the loader."""
    done = subprocess.run(  # noqa: S603
        ["ldd", *map(str, binaries)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    found: set[Path] = set()
    for line in done.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            target = words[words.index("=>") + 1]
            if target.startswith("/"):
                found.add(Path(target))
        elif words and words[0].startswith("/") and not words[0].endswith(":"):
            found.add(Path(words[0]))  # the loader: /lib64/ld-linux-x86-64.so.2
    if not found:
        raise PythonImageUnavailable(f"ldd lists no libraries for {HOST_PYTHON}: {done.stderr}")
    return found


def _contents() -> dict[str, Path]:
    """Where each file goes in the image -> the host file it is a copy of."""
    interpreter = _interpreter()
    stdlib = _stdlib(interpreter)
    files = {str(path): path for path in _stdlib_files(stdlib)}
    files[str(interpreter)] = interpreter
    extensions = sorted((stdlib / "lib-dynload").glob("*.so"))
    for library in _libraries([interpreter, *extensions]):
        files[str(library)] = library.resolve()  # by the name the loader looks for
    return files


def _content_hash(base_id: str, files: dict[str, Path]) -> str:
    digest = hashlib.sha256(f"{RECIPE}\0{base_id}\0".encode())
    for target, source in sorted(files.items()):
        stat = source.stat()
        digest.update(f"{target}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:32]


def _base_files(client: DockerClient, base: str) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """The base image's files (busybox, /etc/passwd, /tmp), from a container never started."""
    container = client.containers.create(base, network_mode="none")
    try:
        exported = b"".join(container.export())
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        for member in tar:
            if member.name != ".dockerenv":
                data = tar.extractfile(member) if member.isfile() else None
                yield member, data.read() if data is not None else b""


def _rootfs(client: DockerClient, base: str, files: dict[str, Path]) -> bytes:
    """One tar of the base image's files and the interpreter's: `docker import` takes it as a
    single layer in a second or two (a Dockerfile build FROM the base with a COPY took ~20)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in _base_files(client, base):
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
        for target, source in sorted(files.items()):
            tar.add(source, arcname=target.lstrip("/"), recursive=False)
        link = tarfile.TarInfo("usr/bin/python3")
        link.type = tarfile.SYMTYPE
        link.linkname = _interpreter().name
        tar.addfile(link)
    return buffer.getvalue()


def build_python_image(client: DockerClient, base: str) -> str:
    """The image, built on `base`'s files unless one with the same contents is there already."""
    files = _contents()
    content = _content_hash(client.images.get(base).id or "", files)
    try:
        labels = client.images.get(PYTHON_IMAGE).labels or {}
        if labels.get(CONTENT_LABEL) == content:
            return PYTHON_IMAGE
    except ImageNotFound:
        pass
    repository, tag = PYTHON_IMAGE.split(":")
    client.api.import_image_from_data(
        _rootfs(client, base, files),
        repository=repository,
        tag=tag,
        changes=[f"LABEL {CONTENT_LABEL}={content}", 'CMD ["/usr/bin/python3"]'],
    )
    return PYTHON_IMAGE


if __name__ == "__main__":  # by hand: python -m tests.runtime.python_image
    import docker

    print(build_python_image(docker.from_env(), "saassy/base:test"), file=sys.stderr)
