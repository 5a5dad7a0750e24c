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


def test_python_tracebacks_start_at_the_customers_code(tmp_path: Path) -> None:
    code = "import json\n\ndef parse(text):\n    return json.loads(text)\n\nparse('{oops')\n"
    run = run_example("python", {"code": code}, tmp_path)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[:5] == [
        "Traceback (most recent call last):",
        '  File "main.py", line 6, in <module>',
        "    parse('{oops')",
        '  File "main.py", line 4, in parse',
        "    return json.loads(text)",
    ]
    assert lines[-1].startswith("json.decoder.JSONDecodeError: Expecting property name")
    assert "python_runner" not in run.stderr
    assert "exec(" not in run.stderr


def test_python_syntax_errors_point_at_the_customers_line(tmp_path: Path) -> None:
    run = run_example("python", {"code": "x = 1\ndef broken(:\n"}, tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == '  File "main.py", line 2'
    assert "def broken(:" in run.stderr
    assert "python_runner" not in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("code", "exit_code", "last_line"),
    [
        ("raise KeyboardInterrupt", 130, "KeyboardInterrupt"),
        ("class Stop(BaseException):\n    pass\nraise Stop('now')", 1, "Stop: now"),
        (
            "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
            "    raise RuntimeError('again') from e",
            1,
            "RuntimeError: again",
        ),
    ],
)
def test_python_other_exceptions_end_like_the_interpreter_would(
    tmp_path: Path, code: str, exit_code: int, last_line: str
) -> None:
    run = run_example("python", {"code": code}, tmp_path)
    assert run.returncode == exit_code
    assert run.stderr.splitlines()[-1] == last_line
    assert "python_runner" not in run.stderr
    assert run.stderr.count('File "main.py"') >= 1


def test_python_args_reach_argv_as_the_strings_they_are(tmp_path: Path) -> None:
    code = "import json, sys\njson.dump(sys.argv, open('result.json', 'w'))"
    run = run_example("python", {"code": code, "args": ["1", "true", " spaced "]}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result == ["main.py", "1", "true", " spaced "]
    # The schema refuses anything else; the runner does not convert behind the code's back.
    (tmp_path / "again").mkdir()
    refused = run_example("python", {"code": code, "args": [1]}, tmp_path / "again")
    assert refused.returncode == 1
    assert "args must be strings" in refused.stderr


def test_python_code_runs_as_main(tmp_path: Path) -> None:
    code = (
        "import json\nif __name__ == '__main__':\n    json.dump(__name__, open('result.json', 'w'))"
    )
    run = run_example("python", {"code": code}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result == "__main__"
