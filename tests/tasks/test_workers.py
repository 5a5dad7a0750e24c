"""The example programs honour the worker contract when run directly (no sandbox needed)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from saassy.config import EXAMPLE_CONFIG, load_catalog
from saassy.tasks.workers import workers_dir

HOST_PYTHON = "/usr/bin/python3"  # what the sandbox runs: not our virtualenv


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    output: Path

    @property
    def result(self) -> Any:
        return json.loads((self.output / "result.json").read_text())


def run_example(task_type: str, payload: Any, tmp_path: Path) -> Run:
    argv = load_catalog(EXAMPLE_CONFIG).task_types[task_type].argv(workers_dir())
    (tmp_path / "input.json").write_text(json.dumps(payload))
    output = tmp_path / "output"
    output.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "SAASSY_INPUT": str(tmp_path / "input.json"),
        "SAASSY_OUTPUT": str(output),
        "SAASSY_EVENTS": str(tmp_path / "events.jsonl"),
    }
    done = subprocess.run(  # noqa: S603 - our own example argv
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr, output)


@pytest.fixture(autouse=True)
def _host_python() -> None:
    if not Path(HOST_PYTHON).exists():
        pytest.skip("no /usr/bin/python3 on this host")


def test_echo_returns_its_input(tmp_path: Path) -> None:
    payload = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    run = run_example("echo", payload, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result == payload
    assert "echoed" in run.stdout


def test_python_result_is_what_the_code_writes(tmp_path: Path) -> None:
    code = (
        "import json, os, sys\n"
        "print('working on', sys.argv[1:])\n"
        "json.dump({'sum': sum(int(a) for a in sys.argv[1:])}, open('result.json', 'w'))\n"
        "open('report.txt', 'w').write('an artifact')\n"
        "with open(os.environ['SAASSY_EVENTS'], 'a') as events:\n"
        "    events.write(json.dumps({'type': 'action', 'name': 'publish'}) + '\\n')\n"
    )
    run = run_example("python", {"code": code, "args": ["2", "40"]}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result == {"sum": 42}
    assert (run.output / "report.txt").read_text() == "an artifact"
    assert "working on ['2', '40']" in run.stdout
    events = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in events] == [{"type": "action", "name": "publish"}]


def test_python_without_result_file_has_none(tmp_path: Path) -> None:
    run = run_example("python", {"code": "print('no result')"}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (run.output / "result.json").exists()
    assert run.stdout == "no result\n"


@pytest.mark.parametrize(
    ("code", "exit_code", "stderr_part"),
    [
        ("raise ValueError('boom')", 1, "ValueError: boom"),
        ("import sys; sys.exit(3)", 3, ""),
        ("def broken(:", 1, "SyntaxError"),
        ("import sys; print('bad', file=sys.stderr); sys.exit('fatal')", 1, "fatal"),
    ],
)
def test_python_failures_exit_non_zero_with_the_reason_on_stderr(
    tmp_path: Path, code: str, exit_code: int, stderr_part: str
) -> None:
    run = run_example("python", {"code": code}, tmp_path)
    assert run.returncode == exit_code
    assert stderr_part in run.stderr


def test_python_code_runs_as_main(tmp_path: Path) -> None:
    code = (
        "import json\nif __name__ == '__main__':\n    json.dump(__name__, open('result.json', 'w'))"
    )
    run = run_example("python", {"code": code}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result == "__main__"
