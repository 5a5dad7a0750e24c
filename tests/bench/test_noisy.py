"""`python -m bench.noisy`, the noisy-neighbour phase alone: what a newcomer reads and gets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.client import BenchError

from bench import noisy

ROOT = Path(__file__).resolve().parents[2]


def test_its_help_keeps_the_example_and_explains_every_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.noisy", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert any(line.startswith("`python -m bench.noisy [--samples") for line in lines), lines
    assert "  --runs RUNS" not in lines, done.stdout  # an option with no help is its name alone


def test_a_run_that_cannot_measure_ends_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(database_url: str | None, samples: int, queued: int) -> None:
        raise BenchError("3 tasks left no result")  # as where no sandbox can be made

    monkeypatch.setattr(noisy, "run_once", refused)
    monkeypatch.setattr(sys, "argv", ["python -m bench.noisy", "--samples", "3"])
    with pytest.raises(SystemExit) as ended:
        noisy.main()
    assert str(ended.value.code).startswith("error: 3 tasks left no result (the server's log: ")
    assert str(ended.value.code).endswith("server-noisy.log)")
