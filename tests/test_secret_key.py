"""No public secret signs anything: `saassy api` refuses to start without a random secret key,
and `saassy dev` signs with its own key, made once per data dir."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest

import saassy
from saassy.kit.secret_key import PUBLISHED_SECRETS
from saassy.kit.security import JWT_AUDIENCE, issue_access_token
from tests.conftest import TEST_VAULT_KEY
from tests.test_cli import PASSWORD, invoke

OLD_DEVELOPMENT_SECRET = "dev-insecure-secret-change-me-0123456789"


def run_api(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `saassy api` command in its own process, with only these SAASSY_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
    return subprocess.run(
        [sys.executable, "-m", "saassy.cli", "api", "--port", "9"],
        env={**clean, "SAASSY_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("environment", [None, "development", "test", "production"])
def test_api_without_a_secret_key_refuses_to_start(tmp_path: Path, environment: str | None) -> None:
    env = {"SAASSY_VAULT_KEYS": TEST_VAULT_KEY}
    if environment is not None:
        env["SAASSY_ENV"] = environment
    result = run_api(tmp_path, **env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: SAASSY_SECRET_KEY must be set")
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "none.db").exists()  # it stopped before touching anything


@pytest.mark.parametrize("environment", ["development", "production"])
def test_api_with_the_old_development_secret_refuses_to_start(
    tmp_path: Path, environment: str
) -> None:
    result = run_api(
        tmp_path,
        SAASSY_ENV=environment,
        SAASSY_VAULT_KEYS=TEST_VAULT_KEY,
        SAASSY_SECRET_KEY=OLD_DEVELOPMENT_SECRET,
    )
    assert result.returncode == 1
    assert "SAASSY_SECRET_KEY: is a value published in Saassy's source" in result.stderr
    assert OLD_DEVELOPMENT_SECRET not in result.stderr
    assert OLD_DEVELOPMENT_SECRET in PUBLISHED_SECRETS


def constants_in_the_source() -> set[str]:
    """Every string literal of the package that could pass for a key, and the published ones."""
    found = set(PUBLISHED_SECRETS)
    for path in Path(saassy.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                if len(value) >= 16 and not any(char.isspace() for char in value):
                    found.add(value)
    return found


def forged_token(user_id: str, secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about short HMAC keys: that is the point
        token, _ = issue_access_token(uuid.UUID(user_id), secret, timedelta(minutes=5))
    return token


def test_dev_signs_with_its_own_key_and_no_constant_from_the_source(
    run_dev: object, tmp_path: Path
) -> None:
    start = run_dev
    assert callable(start)
    data_dir = tmp_path / "data"
    base, _ = start(data_dir)
    key_file = data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signup = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": "victim@example.com", "password": PASSWORD}
    )
    assert signup.status_code == 201, signup.text
    user_id, genuine = signup.json()["user"]["id"], signup.json()["access_token"]
    me = f"{base}/api/v1/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {genuine}"}).status_code == 200
    # What the genuine token was signed with: the data dir's key, which forges as well.
    claims = jwt.decode(genuine, options={"verify_signature": False}, audience=JWT_AUDIENCE)
    assert claims["sub"] == user_id
    key = key_file.read_text().strip()
    own = forged_token(user_id, key)
    assert httpx.get(me, headers={"Authorization": f"Bearer {own}"}).status_code == 200

    constants = constants_in_the_source()
    assert len(constants) > 100  # the scan found the package's literals
    with httpx.Client(base_url=base) as client:
        for secret in sorted(constants):
            answer = client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {forged_token(user_id, secret)}"}
            )
            assert answer.status_code == 401, secret

    base, _ = start(data_dir)  # a restart on the same data dir keeps the key, and the sessions
    assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {genuine}"}).is_success
    assert key_file.read_text().strip() == key
    other, _ = start(tmp_path / "other")  # another data dir: another key
    assert (
        httpx.get(f"{other}/api/v1/me", headers={"Authorization": f"Bearer {own}"}).status_code
        == 401
    )


def test_dev_refuses_a_key_file_others_may_read(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key_file = data_dir / "secret.key"
    key_file.write_text("x" * 64 + "\n")
    key_file.chmod(0o644)
    result = invoke("dev", "--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert f"{key_file}: mode 0644 lets other users read it" in result.output
    assert "x" * 64 not in result.output
    assert not (data_dir / "saassy.db").exists()  # it stopped before anything else
