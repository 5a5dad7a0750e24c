"""Every table is classified for account deletion: a new one fails here until it is."""

from __future__ import annotations

from saassy.models.base import Base
from saassy.privacy.erasure_tables import ERASURE


def test_every_table_says_what_deleting_an_account_does_to_it() -> None:
    tables = set(Base.metadata.tables)
    assert sorted(tables - set(ERASURE)) == [], "classify these in privacy/erasure_tables.py"
    assert sorted(set(ERASURE) - tables) == [], "these tables no longer exist"


def test_each_classification_names_real_columns_and_a_reason_to_keep() -> None:
    for name, erasure in ERASURE.items():
        columns = set(Base.metadata.tables[name].c.keys())
        named = {*erasure.deleted_by_user, *erasure.cleared}
        if erasure.deleted_by_organization is not None:
            named.add(erasure.deleted_by_organization)
        assert named <= columns, name
        acted = bool(named or erasure.special)
        assert acted != bool(erasure.kept), f"{name}: either acted on or kept with a reason"


def test_every_column_that_may_name_a_user_is_handled() -> None:
    for name, erasure in ERASURE.items():
        if erasure.special:
            continue
        for column in Base.metadata.tables[name].c:
            if column.name.endswith("user_id"):
                assert column.name in {*erasure.deleted_by_user, *erasure.cleared}, (
                    f"{name}.{column.name} names a user: delete or clear it"
                )
            if column.name == "organization_id":
                assert erasure.deleted_by_organization == "organization_id", (name, column.name)
