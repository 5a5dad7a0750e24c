"""The server's access log names paths, never query strings: e-mailed links carry their
single-use tokens there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

TOKEN = "Tok3nThatMustNotBeLogged_0123456789"


def test_the_access_log_keeps_tokens_out(
    run_dev: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, log = run_dev(tmp_path / "data")
    for path in ("/reset-password", "/verify-email", "/login/magic", "/invitations/accept"):
        response = httpx.get(f"{url}{path}", params={"token": TOKEN})
        assert response.status_code in (200, 404), (path, response.status_code)  # unknown token
    text = log.read_text()
    assert '"GET /reset-password HTTP/1.1" 200' in text  # the request is logged, its path kept
    assert TOKEN not in text
