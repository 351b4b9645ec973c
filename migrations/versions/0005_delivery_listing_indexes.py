"""delivery listing indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNACKNOWLEDGED = sa.text("response_code <> 0")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_order_no_id", ["order_no", "id"], unique=False)
        batch_op.create_index("ix_deliveries_unacknowledged_id", ["id"], unique=False,
                              postgresql_where=UNACKNOWLEDGED, sqlite_where=UNACKNOWLEDGED)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_unacknowledged_id")
        batch_op.drop_index("ix_deliveries_order_no_id")
