"""The sandbox's whole environment: none of the platform's, only what the program is owed."""

from __future__ import annotations

from saassy.runtime.base import SandboxSpec

SANDBOX_HOME = "/tmp"  # noqa: S108  (inside the sandbox: its own private tmpfs)
PROXY_URL = "http://127.0.0.1:3128"  # the egress proxy's socket inside the sandbox's network
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# Every spelling clients look for; nothing may bypass the proxy (there is no route anyway).
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def sandbox_env(
    spec: SandboxSpec,
    *,
    input_path: str,
    output_path: str,
    events_path: str,
    secrets_path: str,
    home: str = SANDBOX_HOME,
    proxy_url: str = PROXY_URL,
    with_secrets: bool = True,
) -> dict[str, str]:
    """Defaults, the proxy, the task type's env, secrets if asked (and `with_secrets`: the docker
    runtime hands them over through its gate instead); the SAASSY_* contract last."""
    env = {**BASE_ENV, "HOME": home, "TMPDIR": home}
    if spec.network:
        env.update(dict.fromkeys(PROXY_VARIABLES, proxy_url))
        env["NO_PROXY"] = env["no_proxy"] = ""
    env.update(spec.env)
    if with_secrets:
        env.update(secret_variables(spec))
    env.update(
        {
            "SAASSY_INPUT": input_path,
            "SAASSY_OUTPUT": output_path,
            "SAASSY_EVENTS": events_path,
            "SAASSY_SANDBOX": spec.name,
        }
    )
    if spec.secrets:
        env["SAASSY_SECRETS"] = secrets_path
    return env


def secret_variables(spec: SandboxSpec) -> dict[str, str]:
    """The secrets as environment variables, when the task type asks for them so."""
    if not spec.secrets_as_env:
        return {}
    return {name: secret.get_secret_value() for name, secret in spec.secrets.items()}
