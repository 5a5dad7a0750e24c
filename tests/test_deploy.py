"""The deployment files name only settings that exist, and their YAML parses.

A `SAASSY_*` name that is not a setting stops every server command at start, so a typo in
deploy/ would stop the whole installation; this catches it before an operator does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from saassy.config import unknown_variables

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SAASSY_NAME = re.compile(r"\bSAASSY_[A-Z0-9_]+")
FILES = [
    DEPLOY / "docker-compose.yml",
    DEPLOY / ".env.example",
    *sorted((DEPLOY / "kubernetes").glob("*.yaml")),
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_saassy_variable_is_a_setting(path: Path) -> None:
    names = set(SAASSY_NAME.findall(path.read_text(encoding="utf-8")))
    assert unknown_variables(dict.fromkeys(names, "")) == []


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix in {".yml", ".yaml"}], ids=str)
def test_the_yaml_parses(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert documents
    assert all(isinstance(d, dict) for d in documents)


@pytest.mark.parametrize("service", ["worker", "scheduler"])
def test_compose_serves_the_metrics_of_processes_without_http(service: str) -> None:
    """`saassy metrics` runs in the service's own container (one pid namespace: prometheus-client
    names its files by pid) and reads the directory the service's processes write to."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    definition = compose["services"][service]
    script = " ".join(definition["entrypoint"])
    assert "saassy metrics --host 0.0.0.0 --port 9464 &" in script
    directory = definition["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert any(mount.startswith(f"{directory}:") for mount in definition["tmpfs"])
