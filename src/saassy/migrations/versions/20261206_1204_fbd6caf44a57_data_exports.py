"""data exports

Revision ID: fbd6caf44a57
Revises: 425f0bb6fc7b
Create Date: 2026-12-06 12:04:08.093298
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saassy.kit.types

revision: str = "fbd6caf44a57"
down_revision: str | None = "425f0bb6fc7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_exports",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("started_at", saassy.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", saassy.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", saassy.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", saassy.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_data_exports_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_data_exports_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    with op.batch_alter_table("data_exports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_exports_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_data_exports_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_data_exports_status", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "ix_data_exports_user_created", ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_exports", schema=None) as batch_op:
        batch_op.drop_index("ix_data_exports_user_created")
        batch_op.drop_index("ix_data_exports_status")
        batch_op.drop_index(batch_op.f("ix_data_exports_organization_id"))
        batch_op.drop_index(batch_op.f("ix_data_exports_created_at"))

    op.drop_table("data_exports")
