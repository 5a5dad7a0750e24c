"""The deployment files are valid for the tools that read them, and name only real settings.

A `SAASSY_*` name that is not a setting stops every server command at start, so a typo in
deploy/ would stop the whole installation; this catches it before an operator does. The compose
file must pass Debian's `docker-compose config` (filled in from .env.example), and every
Kubernetes manifest the Kubernetes schemas (kubernetes-validate, strict: no unknown fields).
The image itself is built and started in test_deploy_image.py.
"""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from saassy.config import unknown_variables
from tests.services import IN_CI

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SAASSY_NAME = re.compile(r"\bSAASSY_[A-Z0-9_]+")
FILES = [
    DEPLOY / "docker-compose.yml",
    DEPLOY / ".env.example",
    *sorted(KUBERNETES.glob("*.yaml")),
]
# The oldest Kubernetes these manifests claim to run on, and a recent one (no removed APIs).
KUBERNETES_VERSIONS = ("1.30.0", "1.35.0")
# Objects of custom resources, which have no Kubernetes schema: checked below instead.
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
KEDA_API = "keda.sh/v1alpha1"
OPERATOR_COPIES = {"secret.yaml"}  # made from their .example.yaml, ignored by git
# The settings .env.example leaves empty for the operator to fill in.
EMPTY_SECRET = re.compile(r"^([A-Z0-9_]+)=$", re.MULTILINE)
VAULT_KEY = "SAASSY_VAULT_KEYS"
DUE_TASKS_METRIC = "saassy_queued_tasks_due"
QUEUE_COLLECTOR = DEPLOY.parent / "src" / "saassy" / "observability" / "queue_collector.py"


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI installs it")
    pytest.skip(message)


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_saassy_variable_is_a_setting(path: Path) -> None:
    names = set(SAASSY_NAME.findall(path.read_text(encoding="utf-8")))
    assert unknown_variables(dict.fromkeys(names, "")) == []


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix in {".yml", ".yaml"}], ids=str)
def test_the_yaml_parses(path: Path) -> None:
    found = documents(path)
    assert found
    assert all(isinstance(d, dict) for d in found)


# --- Docker Compose -------------------------------------------------------------------------


def filled_in_env() -> str:
    """.env.example with every empty value given one, as an operator would."""

    def value(match: re.Match[str]) -> str:
        if match[1] == VAULT_KEY:
            return f"{match[1]}={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"
        return f"{match[1]}={secrets.token_urlsafe(32)}"

    return EMPTY_SECRET.sub(value, (DEPLOY / ".env.example").read_text(encoding="utf-8"))


def compose_config(tmp_path: Path, env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on a copy of deploy/ with `env` as its .env (never the real one)."""
    compose = shutil.which("docker-compose")
    if compose is None:
        unavailable("no docker-compose: apt-get install docker-compose")
        raise AssertionError("unreachable")
    copy = tmp_path / "deploy"
    copy.mkdir()
    for name in ("docker-compose.yml", "Caddyfile"):
        shutil.copy(DEPLOY / name, copy / name)
    (copy / ".env").write_text(env, encoding="utf-8")
    return subprocess.run(  # noqa: S603 - a fixed command on our own files
        [compose, "-f", str(copy / "docker-compose.yml"), "config"],
        cwd=tmp_path,
        # Nothing of this process's environment may fill in what .env leaves empty.
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_is_valid_once_env_is_filled_in(tmp_path: Path) -> None:
    env = filled_in_env()
    done = compose_config(tmp_path, env)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["services"]) >= {"postgres", "migrate", "api", "scheduler", "worker"}
    password = re.search(r"^POSTGRES_PASSWORD=(.+)$", env, re.MULTILINE)
    assert password is not None
    database_url = config["services"]["api"]["environment"]["SAASSY_DATABASE_URL"]
    assert database_url == f"postgresql://saassy:{password[1]}@postgres:5432/saassy"
    assert config["services"]["migrate"]["command"] == ["db", "upgrade"]


def test_compose_file_refuses_the_example_env_as_it_is(tmp_path: Path) -> None:
    done = compose_config(tmp_path, (DEPLOY / ".env.example").read_text(encoding="utf-8"))
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr


# --- Kubernetes -----------------------------------------------------------------------------


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(KUBERNETES.glob("*.yaml")) for doc in documents(path)]


def example(name: str) -> str:
    return name.removesuffix(".yaml") + ".example.yaml"


def objects_of(api: str | None) -> list[tuple[Path, dict[str, Any]]]:
    custom = {KUSTOMIZE_API, KEDA_API}
    return [
        (path, doc)
        for path, doc in manifests()
        if (doc["apiVersion"] == api if api else doc["apiVersion"] not in custom)
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("no kubernetes-validate: pip install kubernetes-validate (in the dev extra)")
        raise
    invalid = []
    for path, doc in objects_of(None):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(map(str, e.absolute_path))
            invalid.append(
                f"{path.name} {doc['kind']}/{doc['metadata']['name']} {where}: {e.message}"
            )
        except kubernetes_validate.SchemaNotFoundError as e:
            invalid.append(f"{path.name}: {e.message}")
    assert invalid == []
    assert len(objects_of(None)) > 10  # the glob found the manifests


def test_kustomization_lists_every_manifest_and_only_existing_files() -> None:
    ((_, kustomization),) = objects_of(KUSTOMIZE_API)
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    # secret.yaml is the operator's filled-in copy of secret.example.yaml, never in git.
    listed = {
        name if (KUBERNETES / name).exists() and name not in OPERATOR_COPIES else example(name)
        for name in resources
    }
    tracked = {p.name for p in KUBERNETES.glob("*.yaml")} - OPERATOR_COPIES
    # Not applied with the rest: the kustomization itself and the KEDA example (needs KEDA).
    assert listed == tracked - {"kustomization.yaml", "worker-autoscaling.example.yaml"}


def test_kustomize_sets_the_image_every_saassy_container_names() -> None:
    ((_, kustomization),) = objects_of(KUSTOMIZE_API)
    renamed = {image["name"] for image in kustomization["images"]}
    images = {
        container["image"]
        for _, doc in objects_of(None)
        for container in doc.get("spec", {})
        .get("template", {})
        .get("spec", {})
        .get("containers", [])
    }
    assert {image for image in images if image.startswith("saassy")} == renamed == {"saassy"}


def test_keda_scales_the_worker_deployment_on_due_tasks() -> None:
    ((_, scaled),) = objects_of(KEDA_API)
    assert scaled["kind"] == "ScaledObject"
    deployments = {d["metadata"]["name"] for _, d in objects_of(None) if d["kind"] == "Deployment"}
    assert scaled["spec"]["scaleTargetRef"]["name"] == "saassy-worker"
    assert "saassy-worker" in deployments
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == f"max({DUE_TASKS_METRIC})"
    assert f'"{DUE_TASKS_METRIC}"' in QUEUE_COLLECTOR.read_text(encoding="utf-8")
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


@pytest.mark.parametrize("service", ["worker", "scheduler"])
def test_compose_serves_the_metrics_of_processes_without_http(service: str) -> None:
    """`saassy metrics` runs in the service's own container (one pid namespace: prometheus-client
    names its files by pid) and reads the directory the service's processes write to."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    definition = compose["services"][service]
    script = " ".join(definition["entrypoint"])
    assert 'metrics="saassy metrics --host 0.0.0.0 --port 9464"' in script
    assert "setpriv --reuid=10001 --regid=10001 --clear-groups" in script  # never root
    assert "$$metrics & exec saassy" in script
    directory = definition["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert any(mount.startswith(f"{directory}:") for mount in definition["tmpfs"])


def test_kubernetes_metrics_sidecars_share_the_pods_process_namespace() -> None:
    """A `saassy metrics` sidecar reads the files the pod's main process writes, named by pid: in
    namespaces of their own both would be the same pid and write into the same files."""
    pods = [
        doc["spec"]["template"]["spec"]
        for _, doc in objects_of(None)
        if doc["kind"] == "Deployment"
        and any(
            c.get("args", [None])[0] == "metrics"
            for c in doc["spec"]["template"]["spec"]["containers"]
        )
    ]
    assert len(pods) == 2  # the workers and the scheduler
    for pod in pods:
        assert pod.get("shareProcessNamespace") is True
        for container in pod["containers"]:
            assert {"name": "TINI_SUBREAPER", "value": "1"} in container["env"]
