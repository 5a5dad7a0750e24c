"""The tools that run one benchmark phase alone (`python -m bench.<tool>`) run and print what they
measure. Apart from tests/bench: they need no PostgreSQL, so CI runs them in its SQLite pass,
beside the heavier PostgreSQL one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("tool", "argv", "said"),
    [
        ("bench.submit_path", ["--requests", "20"], "API key"),
        ("bench.noisy", ["--samples", "3", "--queued", "200"], "busy: claim p50"),
        ("bench.engine_path", ["--tasks", "40"], "outcome (success, usage)"),
        (
            "bench.submit_api",
            ["--repetitions", "1", "--duration", "1", "--warm-up", "0.5"],
            "Saassy / durable",
        ),
    ],
)
def test_the_tools_that_run_one_phase_alone_run(tool: str, argv: list[str], said: str) -> None:
    require_isolation(ProcessRuntime())
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", tool, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert said in done.stdout
