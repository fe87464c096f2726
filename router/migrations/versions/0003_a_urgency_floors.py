"""tickets.urgency_floors: the danger floors that set a ticket's priority, and why

Revision ID: 0003_a_urgency_floors
Revises: 0002_job_heartbeat
Create Date: 2026-12-05 00:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_a_urgency_floors"
down_revision = "0002_job_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgency_floors", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("urgency_floors")
