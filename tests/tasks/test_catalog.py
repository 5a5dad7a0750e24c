"""Task types load from saassy.toml validated; an error names the dotted key at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from saassy.config import EXAMPLE_CONFIG, ConfigError, Settings, load_catalog
from saassy.plans.catalog import ResourceProfile
from saassy.runtime.artifacts import OutputLimits
from saassy.tasks.catalog import RuntimeKind, TaskType, runtime_context
from saassy.tasks.workers import workers_dir

PLANS = """
[plans.free]
name = "Free"
"""


def load(tmp_path: Path, task_types: str) -> None:
    path = tmp_path / "saassy.toml"
    path.write_text(PLANS + task_types, encoding="utf-8")
    load_catalog(path)


def test_the_example_catalog_has_working_echo_and_python_types() -> None:
    catalog = load_catalog(EXAMPLE_CONFIG)
    assert set(catalog.task_types) >= {"echo", "python"}
    python = catalog.task_types["python"]
    assert python.name == "python"
    assert python.uses_workers_dir
    argv = python.argv(workers_dir())
    assert Path(argv[-1]).is_file()
    assert python.input_validator.is_valid({"code": "print(1)", "args": ["a", "1"]})
    assert not python.input_validator.is_valid({"code": "print(1)", "args": [1]})  # argv: str
    assert not python.input_validator.is_valid({"args": []})
    for task_type in catalog.task_types.values():
        plan = catalog.plan(catalog.default_plan)
        assert task_type.resources.exceeding(plan.resources) == [], task_type.name


@pytest.mark.parametrize(
    ("declaration", "key", "message"),
    [
        (
            'title = "X"\ncommand = ["x"]\ninput_schema = { type = "objekt" }',
            "task_types.bad.input_schema",
            "not a valid JSON Schema",
        ),
        (
            'title = "X"\ncommand = ["x"]\n'
            "input_schema = { properties = { a = { minLength = -1 } } }",
            "task_types.bad.input_schema",
            "properties/a/minLength",
        ),
        ('title = "X"', "task_types.bad", "needs a command (the argv the process runtime runs)"),
        (
            'title = "X"\ncommand = ["x"]\nsecrets = ["A", "A"]',
            "task_types.bad",
            "secrets lists a name twice",
        ),
        (
            'title = "X"\ncommand = ["x"]\nsecrets = ["LD_PRELOAD"]\nsecrets_as_env = true',
            "task_types.bad",
            "LD_PRELOAD is a variable the sandbox or its programs rely on",
        ),
        (  # dash's gate stops on it (`export: Illegal number`): the program never runs
            'title = "X"\ncommand = ["x"]\nsecrets = ["A", "OPTIND"]\nsecrets_as_env = true',
            "task_types.bad",
            "OPTIND is a variable /bin/sh sets or refuses itself",
        ),
        (  # read-only in bash
            'title = "X"\ncommand = ["x"]\nsecrets = ["BASH_VERSINFO"]\nsecrets_as_env = true',
            "task_types.bad",
            "BASH_VERSINFO is a variable /bin/sh sets or refuses itself",
        ),
        (
            'title = "X"\ncommand = ["x"]\nsecrets = ["HTTPS_PROXY"]\nsecrets_as_env = true',
            "task_types.bad",
            "HTTPS_PROXY is a variable",
        ),
        (
            'title = "X"\nimage = "render:1"',
            "task_types.bad.image",
            "no image runtime is configured (SAASSY_RUNTIME=process runs commands only)",
        ),
        (
            'title = "X"\ncommand = ["x"]\nimage = "render:1"',
            "task_types.bad.image",
            "declare a `command`",
        ),
        ('title = "X"\ncommand = []', "task_types.bad.command", "non-empty argv"),
        ('title = "X"\ncommand = ["x"]\nretries = -1', "task_types.bad.retries", "greater than"),
        (
            'title = "X"\ncommand = ["x"]\ndefault_timeout_s = 100\nmax_timeout_s = 10',
            "task_types.bad",
            "default_timeout_s is larger than max_timeout_s",
        ),
        ('title = "X"\ncommand = ["x"]\nactions = ["Publish!"]', "task_types.bad.actions.0", ""),
        (
            'title = "X"\ncommand = ["x"]\nnetwork_allow = ["a.example"]',
            "task_types.bad",
            "network",
        ),
        ('title = "X"\ncommand = ["x"]\nshell = true', "task_types.bad.shell", "unknown key"),
        (
            'title = "X"\ncommand = ["x"]\nretry = 2',
            "task_types.bad.retry",
            "unknown key (did you mean retries?)",
        ),
        (
            'title = "X"\ncommand = ["x"]\nresources = { memory_gb = 1 }',
            "task_types.bad.resources.memory_gb",
            "unknown key (did you mean memory_mb?)",
        ),
        (
            'title = "X"\ncommand = ["x"]\nnetwork = true\nnetwork_allow = ["ok.example", "a b"]',
            "task_types.bad.network_allow.1",
            "'a b' is not a valid network_allow entry",
        ),
        (
            'title = "X"\ncommand = ["x"]\nnetwork = true\nnetwork_allow = ["api.example:0"]',
            "task_types.bad.network_allow.0",
            "is not a port",
        ),
        (
            'title = "X"\ncommand = ["x"]\nnetwork = true\nnetwork_allow = ["A.ex", "a.ex."]',
            "task_types.bad",
            "network_allow lists a destination twice",
        ),
        ('title = "X"\ncommand = ["x"]\nresources = { memory_mb = 1 }', "resources.memory_mb", ""),
        ('title = "X"\ncommand = ["x"]\nmax_unit_names = 0', "task_types.bad.max_unit_names", ""),
        (
            'title = "X"\ncommand = ["x"]\nmax_units = 5',
            "task_types.bad.max_units",
            "unknown key (did you mean max_unit_names?)",
        ),
        (
            'title = "X"\ncommand = ["x"]\noutputs = { max_files = 100000 }',
            "task_types.bad.outputs.max_files",
            "less than or equal to 10000",
        ),
        (
            'title = "X"\ncommand = ["x"]\noutputs = { max_depth = 65 }',
            "task_types.bad.outputs.max_depth",
            "less than or equal to 64",
        ),
        (
            'title = "X"\ncommand = ["x"]\noutputs = { max_bytes = 5 }',
            "task_types.bad.outputs.max_bytes",
            "unknown key",
        ),
    ],
)
def test_a_bad_task_type_names_its_key(
    tmp_path: Path, declaration: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as failure:
        load(tmp_path, f"[task_types.bad]\n{declaration}\n")
    assert key in str(failure.value)
    assert message in str(failure.value)


def test_a_bad_task_type_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task_types"):
        load(tmp_path, '[task_types."Has Spaces"]\ntitle = "X"\ncommand = ["x"]\n')


def test_network_allow_entries_are_stored_in_canonical_form() -> None:
    task_type = TaskType(
        title="X",
        command=("x",),
        network=True,
        network_allow=("API.Example.com.", "*.CDN.example:8443", "[2001:DB8::1]:443"),
    )
    assert task_type.network_allow == ("api.example.com", "*.cdn.example:8443", "[2001:db8::1]:443")


def test_backoff_doubles_up_to_its_cap() -> None:
    task_type = TaskType(
        title="X", command=("x",), retries=5, retry_backoff_s=2, retry_backoff_max_s=10
    )
    assert [task_type.backoff_s(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    assert task_type.max_attempts == 6


def test_workers_placeholder_is_resolved_anywhere_in_argv() -> None:
    task_type = TaskType(title="X", command=("python3", "{workers}/a.py", "--dir={workers}"))
    assert task_type.argv(Path("/opt/w")) == ("python3", "/opt/w/a.py", "--dir=/opt/w")
    image_only = TaskType.model_validate(
        {"title": "X", "image": "x:1"}, context=runtime_context({RuntimeKind.image})
    )
    assert not image_only.uses_workers_dir
    with pytest.raises(ValueError, match="no command"):
        image_only.argv(Path("/opt/w"))


def test_workers_dir_prefers_the_installed_copy(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "saassy"
    package.mkdir(parents=True)
    assert workers_dir(package) == tmp_path / "workers"  # a checkout: <repo>/workers
    (package / "_workers").mkdir()
    assert workers_dir(package) == package / "_workers"  # a wheel: force-included


def test_resource_profile_reports_what_exceeds() -> None:
    asked = ResourceProfile(memory_mb=2048, cpus=0.5, pids=512)
    allowed = ResourceProfile(memory_mb=1024, cpus=1)
    assert asked.exceeding(allowed) == ["memory_mb", "pids"]


def test_an_image_runtime_lifts_the_refusal_of_images(tmp_path: Path) -> None:
    """The loader takes the configured runtimes: the docker runtime will pass `image`."""
    path = tmp_path / "saassy.toml"
    path.write_text(PLANS + '[task_types.render]\ntitle = "R"\nimage = "render:1"\n')
    both = frozenset({RuntimeKind.process, RuntimeKind.image})
    assert load_catalog(path, both).task_types["render"].image == "render:1"
    path.write_text(PLANS + '[task_types.shell]\ntitle = "S"\ncommand = ["/bin/true"]\n')
    with pytest.raises(ConfigError, match=r"task_types\.shell\.command: no process runtime"):
        load_catalog(path, frozenset({RuntimeKind.image}))


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("127.0.0.1:8000", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("[::ffff:7f00:1]:80", "a loopback address"),
        ("localhost:8080", "localhost always resolves to a loopback address"),
        ("*.localhost", "localhost always resolves to a loopback address"),
    ],
)
def test_an_allow_list_entry_the_proxy_always_refuses_stops_start_up(
    settings_factory: Callable[..., Settings], tmp_path: Path, entry: str, why: str
) -> None:
    path = tmp_path / "saassy.toml"
    path.write_text(
        PLANS + f'[task_types.net]\ntitle = "N"\ncommand = ["x"]\nnetwork = true\n'
        f'network_allow = ["api.example.com", "{entry}"]\n'
    )
    with pytest.raises(ConfigError) as refused:
        settings_factory(config=path).catalog  # noqa: B018
    assert "task_types.net.network_allow.1" in str(refused.value)
    assert why in str(refused.value)


def test_an_entry_in_a_range_the_operator_opened_is_accepted(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    path = tmp_path / "saassy.toml"
    path.write_text(
        PLANS + '[task_types.net]\ntitle = "N"\ncommand = ["x"]\nnetwork = true\n'
        'network_allow = ["10.20.0.7:443"]\n'
    )
    settings = settings_factory(config=path, egress_allow_private=["10.20.0.0/16"])
    assert settings.catalog.task_types["net"].network_allow == ("10.20.0.7:443",)


def test_the_distinct_unit_names_cap_defaults_to_50_and_a_type_may_set_its_own() -> None:
    assert TaskType(title="X", command=("x",)).max_unit_names == 50
    assert TaskType(title="X", command=("x",), max_unit_names=200).max_unit_names == 200


def test_output_limits_default_and_apply_in_bytes(tmp_path: Path) -> None:
    path = tmp_path / "saassy.toml"
    path.write_text(
        PLANS + '[task_types.a]\ntitle = "A"\ncommand = ["x"]\n'
        '[task_types.b]\ntitle = "B"\ncommand = ["x"]\noutputs = { max_files = 10, max_mb = 2 }\n',
        encoding="utf-8",
    )
    catalog = load_catalog(path)
    assert catalog.task_types["a"].outputs.limits == OutputLimits(1000, 16, 1024 * 2**20)
    assert catalog.task_types["b"].outputs.limits == OutputLimits(10, 16, 2 * 2**20)


def test_disk_mb_at_or_above_memory_mb_is_refused(tmp_path: Path) -> None:
    declaration = 'title = "X"\ncommand = ["x"]\nresources = { memory_mb = 256, disk_mb = 256 }'
    with pytest.raises(ConfigError, match=r"task_types\.bad: resources: disk_mb must be below"):
        load(tmp_path, f"[task_types.bad]\n{declaration}\n")


def test_an_unset_disk_mb_is_half_the_memory() -> None:
    declared = TaskType.model_validate({"title": "X", "command": ["x"], "resources": {}})
    assert declared.resources.disk_mb == 256
    small = {"title": "X", "command": ["x"], "resources": {"memory_mb": 128}}
    assert TaskType.model_validate(small).resources.disk_mb == 64


def test_user_namespaces_are_a_task_type_choice_off_by_default(tmp_path: Path) -> None:
    assert TaskType.model_validate({"title": "X", "command": ["x"]}).allow_user_namespaces is False
    browser = {"title": "X", "command": ["x"], "allow_user_namespaces": True}
    assert TaskType.model_validate(browser).allow_user_namespaces is True
    with pytest.raises(ConfigError, match="allow_user_namespace"):
        load(
            tmp_path,
            '[task_types.bad]\ntitle = "X"\ncommand = ["x"]\nallow_user_namespace = true\n',
        )
