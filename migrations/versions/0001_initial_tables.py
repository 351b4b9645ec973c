"""orders, deliveries, transitions, idempotency keys

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 01:03:23.415823
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_no", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=20), nullable=False),
        sa.Column("pgcode", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("taxfree_amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_amount", sa.BigInteger(), nullable=False),
        sa.Column("disposable_cup_deposit", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_amount", sa.BigInteger(), nullable=False),
        sa.Column("product_name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.String(length=50), nullable=False),
        sa.Column("user_name", sa.String(length=20), nullable=True),
        sa.Column("service_name", sa.String(length=20), nullable=True),
        sa.Column("custom_parameter", sa.String(length=1024), nullable=True),
        sa.Column("email_flag", sa.String(length=1), nullable=True),
        sa.Column("email_addr", sa.String(length=100), nullable=True),
        sa.Column("autopay_flag", sa.String(length=1), nullable=True),
        sa.Column("receipt_flag", sa.String(length=1), nullable=True),
        sa.Column("request_options", sa.JSON(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=True),
        sa.Column("online_url", sa.String(length=512), nullable=True),
        sa.Column("mobile_url", sa.String(length=512), nullable=True),
        sa.Column("tid", sa.String(length=40), nullable=True),
        sa.Column("cid", sa.String(length=64), nullable=True),
        sa.Column("paid_pgcode", sa.String(length=20), nullable=True),
        sa.Column("pay_info", sa.String(length=256), nullable=True),
        sa.Column("card_info", sa.String(length=32), nullable=True),
        sa.Column("install_month", sa.Integer(), nullable=True),
        sa.Column("transaction_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_details", sa.JSON(), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'pending', 'awaiting_deposit', 'paid', 'failed', "
            "'abandoned', 'partially_cancelled', 'cancelled', 'needs_review')",
            name=op.f("ck_orders_status_valid"),
        ),
        sa.CheckConstraint(
            "amount >= 0 AND taxfree_amount >= 0 AND tax_amount >= 0", name=op.f("ck_orders_money")
        ),
        sa.CheckConstraint(
            "cancelled_amount >= 0 AND cancelled_amount <= amount", name=op.f("ck_orders_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_no", name=op.f("uq_orders_order_no")),
        sa.UniqueConstraint("tid", name=op.f("uq_orders_tid")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_index("ix_orders_user_id", ["user_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_addr", sa.String(length=64), nullable=False),
        sa.Column("peer_addr", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=True),
        sa.Column("tid", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("verification", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('callback', 'return', 'cancel')", name=op.f("ck_deliveries_kind_valid")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_deliveries_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_order_id_received_at", ["order_id", "received_at"], unique=False
        )
        batch_op.create_index("ix_deliveries_tid", ["tid"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_idempotency_keys_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_keys_scope")),
    )
    op.create_table(
        "order_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_order_transitions_delivery_id_deliveries"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_transitions_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_transitions")),
    )
    with op.batch_alter_table("order_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_order_transitions_order_id_id", ["order_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_order_transitions_order_id_id")

    op.drop_table("order_transitions")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_tid")
        batch_op.drop_index("ix_deliveries_order_id_received_at")

    op.drop_table("deliveries")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_user_id")
        batch_op.drop_index("ix_orders_status_created_at")

    op.drop_table("orders")
