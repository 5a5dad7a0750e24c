"""Choosing the docker runtime: what it can run, what it refuses at load, and at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from saassy.app import build_docker_runtime
from saassy.cli.settings import require_runtime
from saassy.config import ConfigError, Settings, load_settings
from saassy.tasks.catalog import IMAGE_ONLY, PROCESS_ONLY
from tests.runtime.docker_support import BASE_IMAGE, docker_runtime, shell_less_image

PLANS = 'default_plan = "small"\n[plans.small]\nname = "Small"\n'
IMAGE_TYPE = f'[task_types.render]\ntitle = "Render"\nimage = "{BASE_IMAGE}"\n'


pytestmark = pytest.mark.usefixtures("clean_environment")


def _catalog(tmp_path: Path, task_types: str) -> Path:
    path = tmp_path / "saassy.toml"
    path.write_text(PLANS + task_types)
    return path


def test_the_docker_runtime_runs_images_and_the_process_runtime_commands(tmp_path: Path) -> None:
    assert load_settings().runtimes == PROCESS_ONLY
    docker = load_settings(runtime="docker", config=_catalog(tmp_path, IMAGE_TYPE))
    assert docker.runtimes == IMAGE_ONLY
    assert docker.catalog.task_types["render"].image == BASE_IMAGE


def test_a_command_type_is_refused_under_docker(tmp_path: Path) -> None:
    path = _catalog(tmp_path, '[task_types.echo]\ntitle = "Echo"\ncommand = ["echo"]\n')
    settings = load_settings(runtime="docker", config=path)
    with pytest.raises(ConfigError, match=r"task_types\.echo\.command: no process runtime"):
        settings.catalog  # noqa: B018


def test_an_image_type_is_refused_under_the_process_runtime(tmp_path: Path) -> None:
    settings = load_settings(config=_catalog(tmp_path, IMAGE_TYPE))
    with pytest.raises(ConfigError, match="set SAASSY_RUNTIME=docker"):
        settings.catalog  # noqa: B018


def test_network_and_secrets_as_environment_load_under_docker(tmp_path: Path) -> None:
    # Both run behind the gate (runtime/gate.py); what an image needs for it is checked once
    # the runtime can look at the images (below).
    extra = 'network = true\nsecrets = ["TOKEN"]\nsecrets_as_env = true\n'
    settings = load_settings(runtime="docker", config=_catalog(tmp_path, IMAGE_TYPE + extra))
    render = settings.catalog.task_types["render"]
    assert render.network
    assert render.secrets_as_env


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"runtime": "kubernetes"}, "SAASSY_RUNTIME: Input should be 'process' or 'docker'"),
        ({"docker_url": "unix:///run/docker.sock"}, "SAASSY_RUNTIME is not docker"),
        ({"runtime": "docker", "docker_url": "/run/docker.sock"}, "not a docker daemon address"),
        ({"runtime": "docker", "allow_unisolated": True}, "applies to the process runtime only"),
    ],
)
def test_runtime_settings_that_cannot_apply_are_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)


def _docker_settings(tmp_path: Path, url: str | None = None, catalog: str = IMAGE_TYPE) -> Settings:
    options: dict[str, object] = {"runtime": "docker", "data_dir": tmp_path / "data"}
    if url is not None:
        options["docker_url"] = url
    return load_settings(config=_catalog(tmp_path, catalog), **options)


def test_no_dockerd_stops_start_up_in_one_line(tmp_path: Path) -> None:
    settings = _docker_settings(tmp_path, url=f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(ConfigError) as refused:
        build_docker_runtime(settings)
    message = str(refused.value)
    assert message.startswith("SAASSY_RUNTIME=docker: no dockerd socket at unix://")
    assert "install docker.io and start dockerd" in message
    assert "\n" not in message


def test_a_missing_image_stops_start_up_naming_the_type_and_image(tmp_path: Path) -> None:
    docker_runtime().close()  # skips (fails in CI) without dockerd
    missing = '[task_types.ghost]\ntitle = "Ghost"\nimage = "saassy/not-built:1"\n'
    with pytest.raises(ConfigError) as refused:
        build_docker_runtime(_docker_settings(tmp_path, catalog=IMAGE_TYPE + missing))
    message = str(refused.value)
    assert "task type ghost: image 'saassy/not-built:1' is not on this docker host" in message
    assert "\n" not in message
    runtime = build_docker_runtime(_docker_settings(tmp_path))
    assert runtime.name == "docker"
    runtime.close()


@pytest.mark.parametrize("needs", ["network = true\n", 'secrets = ["T"]\nsecrets_as_env = true\n'])
def test_an_image_without_a_shell_stops_start_up_for_a_gated_type(
    tmp_path: Path, needs: str
) -> None:
    image = shell_less_image(docker_runtime())  # skips (fails in CI) without dockerd
    plain = f'[task_types.plain]\ntitle = "Plain"\nimage = "{image}"\n'
    runtime = build_docker_runtime(_docker_settings(tmp_path, catalog=plain))
    runtime.close()  # a shell-less image is fine where nothing is gated
    gated = f'[task_types.held]\ntitle = "Held"\nimage = "{image}"\n{needs}'
    with pytest.raises(ConfigError) as refused:
        build_docker_runtime(_docker_settings(tmp_path, catalog=IMAGE_TYPE + gated))
    message = str(refused.value)
    assert message.startswith(f"SAASSY_RUNTIME=docker: task type held: image '{image}': ")
    assert "it has no /bin/sh" in message
    assert "needs a /bin/sh in its image" in message
    assert "docker run --rm --entrypoint /bin/sh IMAGE -c true" in message  # to see why
    assert "\n" not in message


def test_a_refused_start_up_never_says_the_runtime_is_ready(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An operator reads `runtime.ready` only when start-up goes on: not before a refusal of an
    image, nor from the CLI's check before the server starts (the server's start says it)."""
    image = shell_less_image(docker_runtime())  # skips (fails in CI) without dockerd
    capfd.readouterr()
    gated = f'[task_types.held]\ntitle = "Held"\nimage = "{image}"\nnetwork = true\n'
    with pytest.raises(ConfigError):
        build_docker_runtime(_docker_settings(tmp_path, catalog=gated))
    require_runtime(_docker_settings(tmp_path))
    assert "runtime.ready" not in capfd.readouterr().out
    build_docker_runtime(_docker_settings(tmp_path)).close()
    assert capfd.readouterr().out.count("runtime.ready") == 1
