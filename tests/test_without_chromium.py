"""Chromium is installed by CI for the browser tests only: a machine without it still runs
`saassy dev` whole, and the browser tests say in one line what to install (and fail under CI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.processes import run_pytest
from tests.runtime.support import without_programs

A_BROWSER_TEST = "tests/browser/test_harness.py::test_screenshots_at_both_widths"


def test_saassy_dev_serves_the_dashboard_without_chromium(
    run_dev: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    with without_programs("chromium"):
        url, _ = run_dev(tmp_path / "data")
    assert "Sign up" in httpx.get(f"{url}/").text
    assert httpx.get(f"{url}/app").headers["location"] == "/login?next=%2Fapp"
    assert ".opblock" not in httpx.get(f"{url}/api/docs").text  # served, rendered in a browser
    assert httpx.get(f"{url}/api/docs").status_code == 200


def test_browser_tests_say_what_to_install_and_fail_in_ci_without_chromium() -> None:
    with without_programs("chromium"):
        local, in_ci = run_pytest(A_BROWSER_TEST, ci=False), run_pytest(A_BROWSER_TEST, ci=True)
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
    assert "chromium is not installed: apt-get install chromium" in local.stdout
    assert in_ci.returncode == 1, in_ci.stdout
    assert "CI must run the browser tests" in in_ci.stdout
