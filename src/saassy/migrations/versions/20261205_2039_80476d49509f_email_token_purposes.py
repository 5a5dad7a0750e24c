"""Email token purposes: magic_links also holds password-reset and verification tokens.

Revision ID: 80476d49509f
Revises: 0081cfcd20c0
Create Date: 2026-12-05 20:39:07.968552
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "80476d49509f"
down_revision: str | None = "0081cfcd20c0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("magic_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=32), server_default="sign_in", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("magic_links", schema=None) as batch_op:
        batch_op.drop_column("purpose")
