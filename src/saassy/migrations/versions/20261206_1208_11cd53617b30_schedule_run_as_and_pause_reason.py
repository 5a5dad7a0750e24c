"""schedule run as and pause reason

A schedule's tasks are submitted as its `run_as_*` member or key (its creator's columns,
renamed: whoever resumes a schedule paused for its actor becomes the actor); a scheduler that
pauses a schedule says why.

Revision ID: 11cd53617b30
Revises: 985a960fbe88
Create Date: 2026-12-06 12:08:13.781982
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saassy.kit.types

revision: str = "11cd53617b30"
down_revision: str | None = "985a960fbe88"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused_at", saassy.kit.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("paused_reason", sa.String(length=32), nullable=True))
        batch_op.alter_column("created_by_user_id", new_column_name="run_as_user_id")
        batch_op.alter_column("created_by_api_key_id", new_column_name="run_as_api_key_id")
    # The schedule behind a task, for its failure e-mail.
    op.create_index("ix_schedule_runs_task_id", "schedule_runs", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_runs_task_id", table_name="schedule_runs")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.alter_column("run_as_api_key_id", new_column_name="created_by_api_key_id")
        batch_op.alter_column("run_as_user_id", new_column_name="created_by_user_id")
        batch_op.drop_column("paused_reason")
        batch_op.drop_column("paused_at")
