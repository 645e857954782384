"""Participation levels: since when, locks, the grace period, history, and linked accounts (persons).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
    op.create_index("ix_members_person_id", "members", ["person_id"])
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("level_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("below_since", UTCDateTime(), nullable=True))
    op.execute("UPDATE memberships SET level_since = joined_at")
    op.create_table(
        "roles_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("old_level", sa.String(16), nullable=False),
        sa.Column("new_level", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("rule", sa.String(300), nullable=False, server_default=""),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_roles_history_member", "roles_history", ["community_id", "member_id", "at"])
    op.create_table(
        "roles_link_codes",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("roles_link_codes")
    op.drop_index("ix_roles_history_member", table_name="roles_history")
    op.drop_table("roles_history")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("below_since")
        batch.drop_column("locked")
        batch.drop_column("level_since")
    op.drop_index("ix_members_person_id", table_name="members")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("person_id")
