"""delivery body length and digest (unsigned browser deliveries are stored truncated);
billkeys.verified_at (a billkey only a buyer's return brought is unverified until charged)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_bytes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("billkeys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    # Billkeys stored so far came from callbacks or from returns alike; keep them usable.
    op.execute("UPDATE billkeys SET verified_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("billkeys", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("body_sha256")
        batch_op.drop_column("body_bytes")
