"""user accounts: password origin, revocation counters, login throttle

Revision ID: 0003_user_accounts
Revises: 0002_job_heartbeat
Create Date: 2026-12-05 00:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

import router.crm.models

revision = "0003_user_accounts"
down_revision = "0002_job_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        # Until now the demo seed was the only way to create a user, all with the published password "kefu-demo":
        # every existing account is a demo account that must change its password (and blocks production).
        batch_op.add_column(
            sa.Column(
                "password_origin",
                sa.Enum("demo", "assigned", "chosen", name="passwordorigin", native_enum=False, length=32),
                nullable=False,
                server_default="demo",
            )
        )
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column in ("password_origin", "session_epoch", "token_version"):
            batch_op.alter_column(column, server_default=None)

    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", router.crm.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttle_window_ends_at"), ["window_ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttle_window_ends_at"))
    op.drop_table("login_throttle")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_version")
        batch_op.drop_column("session_epoch")
        batch_op.drop_column("password_origin")
