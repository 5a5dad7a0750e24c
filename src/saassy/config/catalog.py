"""The operator's catalog from `saassy.toml`, and what start-up refuses in it."""

import tomllib
from pathlib import Path

from pydantic import ValidationError

from saassy.config.errors import ConfigError
from saassy.egress.addresses import AddressGuard, parse_private_ranges
from saassy.egress.policy import never_reachable
from saassy.kit.catalog_model import catalog_error_lines
from saassy.plans.catalog import LOGO_TYPES, Catalog
from saassy.tasks.catalog import PROCESS_ONLY, RuntimeKind, runtime_context

EXAMPLE_CONFIG = Path(__file__).parent.parent / "examples" / "saassy.toml"


def refuse_missing_logo(catalog: Catalog, path: Path) -> None:
    logo = catalog.branding.logo_path(path.parent)
    if logo is None:
        return
    if logo.suffix.lower() not in LOGO_TYPES:
        kinds = ", ".join(sorted(LOGO_TYPES))
        raise ConfigError(f"{path}: branding.logo: {logo.name!r} is not one of {kinds}")
    if not logo.is_file():
        raise ConfigError(f"{path}: branding.logo: no file at {logo}")


def refuse_unreachable_destinations(catalog: Catalog, path: Path, allow_private: list[str]) -> None:
    """An allow-list entry the proxy would refuse on every connection is a promise nothing
    keeps: stop start-up naming it (the ranges the operator opened are taken into account)."""
    guard = AddressGuard(parse_private_ranges(allow_private))
    for name, task_type in catalog.task_types.items():
        for index, entry in enumerate(task_type.network_allow):
            if (why := never_reachable(entry, guard)) is not None:
                key = f"task_types.{name}.network_allow.{index}"
                raise ConfigError(f"{path}: {key}: {entry!r} can never be reached: {why}")


def load_catalog(path: Path, runtimes: frozenset[RuntimeKind] = PROCESS_ONLY) -> Catalog:
    """Read and validate `saassy.toml`; an error names the file and the dotted key at fault.

    `runtimes` says what can run: a task type no configured runtime can start is refused.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Catalog.model_validate(raw, context=runtime_context(runtimes))
    except ValidationError as exc:
        first, *others = catalog_error_lines(exc)
        more = f" (and {len(others)} more)" if others else ""
        raise ConfigError(f"{path}: {first}{more}") from exc
