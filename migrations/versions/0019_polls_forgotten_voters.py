"""Anonymous polls still open keep a keyed mark of each account of a voter who asked to be forgotten:
``polls_forgotten_voters``. Their choice was never stored, so their vote cannot be withdrawn; the mark
refuses a second vote from the same account until the poll closes (the marks are deleted then).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "polls_forgotten_voters",
        sa.Column("poll_id", sa.Integer(), sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("marker", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("polls_forgotten_voters")
