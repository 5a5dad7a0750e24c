"""CI installs docker-compose and debootstrap for the deployment tests only: without them those
tests say in one line what to install (and fail under CI), and `saassy dev` does not need them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.processes import run_pytest
from tests.runtime.support import without_programs

COMPOSE_TEST = "tests/test_deploy.py::test_compose_file_is_valid_once_env_is_filled_in"


def test_saassy_dev_serves_without_the_deployment_tools(
    run_dev: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    with without_programs("docker-compose", "debootstrap", "docker", "dockerd"):
        url, _ = run_dev(tmp_path / "data")
    assert httpx.get(f"{url}/ready").status_code == 200
    assert "Sign up" in httpx.get(f"{url}/").text


def test_the_compose_check_says_what_to_install_and_fails_in_ci_without_docker_compose() -> None:
    with without_programs("docker-compose"):
        local, in_ci = run_pytest(COMPOSE_TEST, ci=False), run_pytest(COMPOSE_TEST, ci=True)
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
    assert "no docker-compose: apt-get install docker-compose" in local.stdout
    assert in_ci.returncode == 1, in_ci.stdout
    assert "no docker-compose: apt-get install docker-compose" in in_ci.stdout
