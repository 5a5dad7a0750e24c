"""quota reservations index by closing time

Revision ID: 844d85463b17
Revises: fc188750197c
Create Date: 2026-12-06 09:18:42.224983
"""

from collections.abc import Sequence

from alembic import op

revision: str = "844d85463b17"
down_revision: str | None = "fc188750197c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quota_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quota_reservations_org_metric_closed",
            ["organization_id", "metric", "closed_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("quota_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_quota_reservations_org_metric_closed")
