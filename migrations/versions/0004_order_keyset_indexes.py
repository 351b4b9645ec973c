"""order keyset indexes, delivery query string

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:47:35.807254
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("query_string", sa.Text(), nullable=True))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_amount_id", ["amount", "id"], unique=False)
        batch_op.create_index("ix_orders_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_orders_paid_at_id", ["paid_at", "id"], unique=False)
        batch_op.create_index("ix_orders_pgcode_created_at", ["pgcode", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_pgcode_created_at")
        batch_op.drop_index("ix_orders_paid_at_id")
        batch_op.drop_index("ix_orders_created_at_id")
        batch_op.drop_index("ix_orders_amount_id")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("query_string")
