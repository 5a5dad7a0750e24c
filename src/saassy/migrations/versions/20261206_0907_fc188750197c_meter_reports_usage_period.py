"""meter reports usage period: the month a report bills, so late usage can be carried over

Revision ID: fc188750197c
Revises: 7dab0839e058
Create Date: 2026-12-06 09:07:46.640966
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fc188750197c"
down_revision: str | None = "7dab0839e058"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_UNIQUE = "uq_meter_reports_organization_id_meter_window_start"
NEW_UNIQUE = "uq_meter_reports_organization_meter_window_usage"


def upgrade() -> None:
    with op.batch_alter_table("meter_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usage_period", sa.Date(), nullable=True))
    # Every report written so far bills the month of its window.
    op.execute("UPDATE meter_reports SET usage_period = period_start")
    with op.batch_alter_table("meter_reports", schema=None) as batch_op:
        batch_op.alter_column("usage_period", existing_type=sa.Date(), nullable=False)
        batch_op.drop_constraint(OLD_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(
            NEW_UNIQUE, ["organization_id", "meter", "window_start", "usage_period"]
        )


def downgrade() -> None:
    # Carry-overs share their window with that month's own report: they cannot stay.
    op.execute("DELETE FROM meter_reports WHERE usage_period <> period_start")
    with op.batch_alter_table("meter_reports", schema=None) as batch_op:
        batch_op.drop_constraint(NEW_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(OLD_UNIQUE, ["organization_id", "meter", "window_start"])
        batch_op.drop_column("usage_period")
