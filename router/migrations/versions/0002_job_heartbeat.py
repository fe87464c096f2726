"""a heartbeat on background jobs, so a job whose worker died is taken over

Revision ID: 0002_job_heartbeat
Revises: 0001_initial
Create Date: 2026-12-05 00:40:00
"""

import sqlalchemy as sa
from alembic import op

import router.crm.models

revision = "0002_job_heartbeat"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("heartbeat_at", router.crm.models.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat_at")
