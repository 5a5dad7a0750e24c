"""Tasks: an index for listing an organization's tasks newest first by keyset

Revision ID: 6df86f33581a
Revises: 80476d49509f
Create Date: 2026-12-05 20:48:50.117790
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6df86f33581a"
down_revision: str | None = "80476d49509f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_org_created", ["organization_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_org_created")
