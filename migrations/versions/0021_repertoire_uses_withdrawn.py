"""A "used" mark that no longer stands on its item: ``repertoire_uses.withdrawn``.

``profile forget`` kept the marks a member gave under their anonymised row, and so on the item ("applied
by 1"): back as a new member, they marked it again and the item counted one person twice. Forgetting now
withdraws a mark from its item (it is no longer counted there), while the value report still counts it
as the "I applied this" that happened in its period. Rows written before are standing marks.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repertoire_uses") as batch_op:
        batch_op.add_column(sa.Column("withdrawn", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("repertoire_uses") as batch_op:
        batch_op.drop_column("withdrawn")
