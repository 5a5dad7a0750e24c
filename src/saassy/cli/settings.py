"""What the server commands share: settings from the environment and the operator's errors.

Heavy (the configuration, SQLAlchemy, alembic): imported only inside server commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.util.exc import CommandError as AlembicError
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from saassy.cli.common import errors, fail
from saassy.config import ConfigError, Settings, load_settings
from saassy.kit.errors import SaassyError
from saassy.kit.key_file import KeyFileError
from saassy.kit.migrate import SchemaNotCurrent
from saassy.storage.base import StorageUnavailable


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn the failures an operator can fix into clean messages."""
    try:
        yield
    except (ConfigError, KeyFileError) as exc:
        fail(str(exc))
    except SaassyError as exc:
        fail(exc.message)
    except (SchemaNotCurrent, StorageUnavailable) as exc:
        fail(str(exc))
    except AlembicError as exc:
        fail(f"migration failed: {exc}")
    except DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(
            f"database error: {first_line} (is the database reachable and migrated? "
            "try `saassy db upgrade`)"
        )
    except ConnectionError as exc:  # asyncpg: the database's address does not answer
        fail(f"database unreachable: {exc} (check SAASSY_DATABASE_URL)")
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


def with_development_key(settings: Settings) -> Settings:
    """In development without SAASSY_SECRET_KEY, the key `saassy dev` keeps in the data dir
    (when it made one): e-mail this command queues is sealed as the dev server's own."""
    from pydantic import SecretStr

    from saassy.config import Environment
    from saassy.kit.secret_key import existing_development_secret_key

    if settings.secret_key is not None or settings.env is not Environment.development:
        return settings
    with reporting_errors():
        key = existing_development_secret_key(settings.data_dir)
    if key is None:
        return settings
    return settings.model_copy(update={"secret_key": SecretStr(key)})


def require_storage(settings: Settings) -> None:
    """Stop with one line when the artifact storage cannot be used (an S3 bucket that does not
    answer), before any server process starts; the app's start checks it again."""
    from saassy.storage.select import build_storage

    asyncio.run(build_storage(settings).check())


def require_runtime(settings: Settings) -> None:
    """Stop with one line when the docker runtime cannot be used (no dockerd, an image
    missing) by a server that runs attempts itself, before any server process starts; the
    app's start builds it again."""
    from saassy.app import build_docker_runtime, embeds_engine
    from saassy.config import RuntimeChoice

    if settings.runtime is RuntimeChoice.docker and embeds_engine(settings):
        build_docker_runtime(settings, announce=False).close()


def redacted(url: str) -> str:
    """A database URL without its password, fit to print."""
    return make_url(url).render_as_string(hide_password=True)


def say_database(settings: Settings) -> None:
    """Name the database a command works on, on standard error: no surprise about which."""
    errors.print(f"database {escape(redacted(settings.resolved_database_url))}")
