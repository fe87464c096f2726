"""model_artifacts: the bytes of every registered model in the CRM, so every machine can load any version

Revision ID: 0008_model_artifacts
Revises: 0007_tracker_cursors
Create Date: 2026-12-05 07:00:00
"""

import sqlalchemy as sa
from alembic import op

import router.crm.models

revision = "0008_model_artifacts"
down_revision = "0007_tracker_cursors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions registered before this table have no bytes here; promoting one stores them from its local files.
    op.create_table(
        "model_artifacts",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", router.crm.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["kind", "version"],
            ["model_versions.kind", "model_versions.version"],
            name="fk_model_artifacts_kind_version_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "version", name=op.f("pk_model_artifacts")),
    )


def downgrade() -> None:
    op.drop_table("model_artifacts")
