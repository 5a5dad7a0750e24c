"""CI installs docker-compose and debootstrap for the deployment tests only: without them those
tests say in one line what to install (and fail under CI), and `saassy dev` does not need them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.runtime.support import without_programs

ROOT = Path(__file__).parent.parent
COMPOSE_TEST = "tests/test_deploy.py::test_compose_file_is_valid_once_env_is_filled_in"


def run_test(test: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run(  # noqa: S603 - our own interpreter and test suite
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_compose_check_says_what_to_install_and_fails_in_ci_without_docker_compose() -> None:
    with without_programs("docker-compose"):
        local, in_ci = run_test(COMPOSE_TEST, ci=False), run_test(COMPOSE_TEST, ci=True)
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
    assert "no docker-compose: apt-get install docker-compose" in local.stdout
    assert in_ci.returncode == 1, in_ci.stdout
    assert "no docker-compose: apt-get install docker-compose" in in_ci.stdout
