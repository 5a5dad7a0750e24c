"""The migrations build exactly the schema the models declare: a model changed without its
migration would pass every test (they create tables from the models) and fail on upgrade."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from saassy.kit.migrate import upgrade_database
from saassy.models import Base


def test_the_migrated_schema_is_the_models_schema(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    upgrade_database(f"sqlite:///{path}", "head")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
