"""Members' own choices: name shown on the dashboard, value-story prompts, activity tracking.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("prompts", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("tracking", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("tracking")
        batch.drop_column("prompts")
        batch.drop_column("public")
