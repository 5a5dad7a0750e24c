"""The sandbox's whole environment: none of the platform's, only what the program is owed."""

from __future__ import annotations

from saassy.runtime.base import SandboxSpec

SANDBOX_HOME = "/tmp"  # noqa: S108  (inside the sandbox: its own private tmpfs)
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def sandbox_env(
    spec: SandboxSpec,
    *,
    input_path: str,
    output_path: str,
    events_path: str,
    home: str = SANDBOX_HOME,
) -> dict[str, str]:
    """Sane defaults, then the task type's env, then its secrets; the SAASSY_* contract last."""
    env = {**BASE_ENV, "HOME": home, "TMPDIR": home}
    env.update(spec.env)
    env.update({name: secret.get_secret_value() for name, secret in spec.secrets.items()})
    env.update(
        {
            "SAASSY_INPUT": input_path,
            "SAASSY_OUTPUT": output_path,
            "SAASSY_EVENTS": events_path,
            "SAASSY_SANDBOX": spec.name,
        }
    )
    return env
