"""What the commands share: settings from the environment, clean errors, a console."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from alembic.util.exc import CommandError as AlembicError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import DBAPIError

from saassy.config import ConfigError, Settings, load_settings
from saassy.kit.errors import SaassyError
from saassy.kit.key_file import KeyFileError
from saassy.kit.migrate import SchemaNotCurrent

# Soft wrap: ids, URLs and commands stay on one line, ready to copy.
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The saassy.toml to use (else SAASSY_CONFIG, else ./saassy.toml, else the example).",
        dir_okay=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the embedded database lives (else SAASSY_DATA_DIR or .saassy)."
    ),
]


def fail(message: str) -> NoReturn:
    """Print one clear line to standard error and exit with status 1, without a traceback."""
    errors.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(1)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn the failures an operator can fix into clean messages."""
    try:
        yield
    except (ConfigError, KeyFileError) as exc:
        fail(str(exc))
    except SaassyError as exc:
        fail(exc.message)
    except SchemaNotCurrent as exc:
        fail(str(exc))
    except AlembicError as exc:
        fail(f"migration failed: {exc}")
    except DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(
            f"database error: {first_line} (is the database reachable and migrated? "
            "try `saassy db upgrade`)"
        )
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


def settings_from(
    *, config: Path | None = None, data_dir: Path | None = None, **overrides: Any
) -> Settings:
    """Settings from the environment with the command line's options on top, catalog checked."""
    if config is not None:
        overrides["config"] = config
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    with reporting_errors():
        settings = load_settings(**overrides)
        settings.catalog  # noqa: B018 - a broken saassy.toml fails here, with its file and key
    return settings
