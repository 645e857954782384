"""Value creation: stories, the conversations asking for them, and the prompt rounds run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "value_stories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("cycle", sa.String(16), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_value_stories_community_at", "value_stories", ["community_id", "created_at"])
    op.create_index("ix_value_stories_author_id", "value_stories", ["author_id"])
    op.create_table(
        "value_prompts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("value_stories.id"), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("asked_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_value_prompts_member_open", "value_prompts", ["member_id", "ended_at"])
    op.create_index("ix_value_prompts_community_asked", "value_prompts", ["community_id", "asked_at"])
    op.create_table(
        "value_rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("ran_at", UTCDateTime(), nullable=False),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.UniqueConstraint("community_id", "period_end", name="uq_value_round"),
    )


def downgrade() -> None:
    op.drop_table("value_rounds")
    op.drop_index("ix_value_prompts_community_asked", table_name="value_prompts")
    op.drop_index("ix_value_prompts_member_open", table_name="value_prompts")
    op.drop_table("value_prompts")
    op.drop_index("ix_value_stories_author_id", table_name="value_stories")
    op.drop_index("ix_value_stories_community_at", table_name="value_stories")
    op.drop_table("value_stories")
