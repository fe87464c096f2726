"""interactions.response: the domain response a bot turn said, so the reopen rule reads the survey from the CRM

Revision ID: 0005_interaction_response
Revises: 0004_urgency_floors
Create Date: 2026-12-05 03:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_interaction_response"
down_revision = "0004_urgency_floors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("response")
