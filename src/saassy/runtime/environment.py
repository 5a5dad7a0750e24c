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
) -> dict[str, str]:
    """Defaults, the proxy, the task type's env, secrets if asked; the SAASSY_* contract last."""
    env = {**BASE_ENV, "HOME": home, "TMPDIR": home}
    if spec.network:
        env.update(dict.fromkeys(PROXY_VARIABLES, proxy_url))
        env["NO_PROXY"] = env["no_proxy"] = ""
    env.update(spec.env)
    if spec.secrets_as_env:
        env.update({name: secret.get_secret_value() for name, secret in spec.secrets.items()})
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
