"""tracker_cursors: how far the turn catch-up has logged each tracker store's events

Revision ID: 0007_tracker_cursors
Revises: 0006_channel_update_lease
Create Date: 2026-12-05 04:20:00
"""

import sqlalchemy as sa
from alembic import op

import router.crm.models

revision = "0007_tracker_cursors"
down_revision = "0006_channel_update_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracker_cursors",
        sa.Column("tracker", sa.String(length=200), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", router.crm.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tracker", name=op.f("pk_tracker_cursors")),
    )


def downgrade() -> None:
    op.drop_table("tracker_cursors")
