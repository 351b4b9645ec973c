"""ops page sessions on record (signing out ends them on the server)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source_addr", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_sessions")),
        sa.UniqueConstraint("digest", name=op.f("uq_ops_sessions_digest")),
    )
    with op.batch_alter_table("ops_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_ops_sessions_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ops_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_ops_sessions_expires_at")
    op.drop_table("ops_sessions")
