"""refunds, billkeys, audit log, reconciliation runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:27:30.812805
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("date", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("fixed", sa.Integer(), nullable=False),
        sa.Column("needs_review", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_runs_date", ["date"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("order_no", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_audit_log_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_order_id_id", ["order_id", "id"], unique=False)

    op.create_table(
        "billkeys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=50), nullable=False),
        sa.Column("pgcode", sa.String(length=20), nullable=False),
        sa.Column("billkey", sa.String(length=40), nullable=False),
        sa.Column(
            "first_order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("first_amount", sa.BigInteger(), nullable=False),
        sa.Column("first_paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_charged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("ck_billkeys_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["first_order_id"], ["orders.id"], name=op.f("fk_billkeys_first_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billkeys")),
        sa.UniqueConstraint("billkey", name=op.f("uq_billkeys_billkey")),
    )
    with op.batch_alter_table("billkeys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_billkeys_client_id_user_id", ["client_id", "user_id"], unique=False
        )

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("taxfree_amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_amount", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("cid", sa.String(length=64), nullable=True),
        sa.Column("cancel_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('full', 'partial')", name=op.f("ck_refunds_kind_valid")),
        sa.CheckConstraint(
            "status IN ('requested', 'done', 'failed', 'unknown')",
            name=op.f("ck_refunds_status_valid"),
        ),
        sa.CheckConstraint("amount > 0 AND taxfree_amount >= 0", name=op.f("ck_refunds_money")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("order_id", "idempotency_key", name=op.f("uq_refunds_order_id")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_refunds_status_created_at", ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_refunds_one_in_flight",
            ["order_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('requested', 'unknown')"),
            postgresql_where=sa.text("status IN ('requested', 'unknown')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_refunds_one_in_flight",
            sqlite_where=sa.text("status IN ('requested', 'unknown')"),
            postgresql_where=sa.text("status IN ('requested', 'unknown')"),
        )
        batch_op.drop_index("ix_refunds_status_created_at")

    op.drop_table("refunds")
    with op.batch_alter_table("billkeys", schema=None) as batch_op:
        batch_op.drop_index("ix_billkeys_client_id_user_id")

    op.drop_table("billkeys")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_order_id_id")
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_runs_date")

    op.drop_table("reconciliation_runs")
