"""channel_updates: a claim is a lease until its turn is done, so a turn that died with its process is redone

Revision ID: 0006_channel_update_lease
Revises: 0005_interaction_response
Create Date: 2026-12-05 04:00:00
"""

import sqlalchemy as sa
from alembic import op

import router.crm.models

revision = "0006_channel_update_lease"
down_revision = "0005_interaction_response"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_updates") as batch:
        batch.add_column(sa.Column("lease_expires_at", router.crm.models.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("done_at", router.crm.models.UtcDateTime(timezone=True), nullable=True))
    # Claims taken before leases were either processed or lost: either way they stay duplicates, as they were.
    op.execute("UPDATE channel_updates SET lease_expires_at = received_at, done_at = received_at")
    with op.batch_alter_table("channel_updates") as batch:
        batch.alter_column(
            "lease_expires_at", existing_type=router.crm.models.UtcDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("channel_updates") as batch:
        batch.drop_column("done_at")
        batch.drop_column("lease_expires_at")
