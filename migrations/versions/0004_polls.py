"""Polls: polls, votes of open polls, voters and counts of anonymous ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 19:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("question", sa.String(300), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("multi", sa.Boolean(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("creator_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_polls_community_id", "polls", ["community_id"])
    op.create_index("ix_polls_message", "polls", ["platform", "message_id"])
    op.create_table(
        "polls_votes",
        sa.Column("poll_id", sa.Integer(), sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("choices", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "polls_voters",
        sa.Column("poll_id", sa.Integer(), sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
    )
    op.create_table(
        "polls_counts",
        sa.Column("poll_id", sa.Integer(), sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("option", sa.Integer(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("polls_counts")
    op.drop_table("polls_voters")
    op.drop_table("polls_votes")
    op.drop_index("ix_polls_message", table_name="polls")
    op.drop_index("ix_polls_community_id", table_name="polls")
    op.drop_table("polls")
