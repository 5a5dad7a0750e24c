"""Every table is decided on for exports, and what is left out is named and documented."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table

from saassy.models import Base
from saassy.privacy.export_tables import TABLES, Excluded, Exported, unclassified_tables

PRIVACY_DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"

# Columns that hold credentials or sealed values: never in an archive, whatever the table.
NEVER = {"password_hash", "token_hash", "key_hash", "sealed", "secret", "previous_secret"}


def test_every_table_is_exported_or_excluded_with_a_reason() -> None:
    # A new table fails here until TABLES says whether and how it is exported.
    assert unclassified_tables() == set()
    assert set(TABLES) == set(Base.metadata.tables)
    for name, rule in TABLES.items():
        if isinstance(rule, Excluded):
            assert len(rule.reason) > 20, name


def test_left_out_columns_exist_and_no_credential_is_exported() -> None:
    for name, rule in TABLES.items():
        if not isinstance(rule, Exported):
            continue
        table = Base.metadata.tables[name]
        assert isinstance(table, Table)
        columns = {column.name for column in table.columns}
        assert rule.omit | rule.omit_for_organization <= columns, name
        assert not (columns & NEVER) - rule.omit, f"{name} would export a credential"


def test_every_table_is_in_the_documented_layout() -> None:
    documented = PRIVACY_DOC.read_text(encoding="utf-8")
    assert [name for name in TABLES if f"`{name}`" not in documented] == []
