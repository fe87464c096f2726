"""tickets.urgency_floors: the danger floors that set a ticket's priority, and why

Revision ID: 0004_urgency_floors
Revises: 0003_user_accounts
Create Date: 2026-12-05 00:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_urgency_floors"
down_revision = "0003_user_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgency_floors", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("urgency_floors")
