"""localstripe comes with the test dependencies: a machine without it says what to do and
skips the billing tests, and CI fails them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import run_pytest

A_BILLING_TEST = "tests/billing/test_stripe_double.py::test_products_update_and_list_by_active"


def test_billing_tests_say_what_to_install_and_fail_in_ci_without_localstripe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None in sys.modules is how Python spells "this module cannot be imported".
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["localstripe"] = None\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(tmp_path), os.environ.get("PYTHONPATH"),
    ])))  # fmt: skip
    local, in_ci = run_pytest(A_BILLING_TEST, ci=False), run_pytest(A_BILLING_TEST, ci=True)
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
    assert "localstripe is not installed (`make test` installs it)" in local.stdout
    assert in_ci.returncode == 1, in_ci.stdout
    assert "CI must run every service-backed test" in in_ci.stdout
