"""account deletion

Revision ID: 985a960fbe88
Revises: fbd6caf44a57
Create Date: 2026-12-06 12:04:29.190136
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saassy.kit.types

revision: str = "985a960fbe88"
down_revision: str | None = "fbd6caf44a57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "deletion_requested_at",
                saassy.kit.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("deletion_requested_at")
