"""Meetings: meetings, their changed occurrences, RSVPs, attendance and notes; members' reminder choice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("reminders", sa.String(8), nullable=False, server_default="room"))
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("place", sa.String(500), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(500), nullable=True),
        sa.Column("until_at", UTCDateTime(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("cap", sa.Integer(), nullable=True),
        sa.Column("creator_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("announcement_id", sa.String(255), nullable=False),
        sa.Column("platform_event_id", sa.String(255), nullable=False),
        sa.Column("platform_event_for", sa.String(32), nullable=False),
        sa.Column("reminded_through", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_meetings_community_id", "meetings", ["community_id"])
    op.create_index("ix_meetings_announcement", "meetings", ["platform", "announcement_id"])
    op.create_table(
        "meetings_changes",
        sa.Column("meeting_id", sa.Integer(), sa.ForeignKey("meetings.id"), primary_key=True),
        sa.Column("occurrence", sa.String(32), primary_key=True),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("moved_to", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "meetings_rsvps",
        sa.Column("meeting_id", sa.Integer(), sa.ForeignKey("meetings.id"), primary_key=True),
        sa.Column("occurrence", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("answer", sa.String(8), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "meetings_attendance",
        sa.Column("meeting_id", sa.Integer(), sa.ForeignKey("meetings.id"), primary_key=True),
        sa.Column("occurrence", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("confirmed_by", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "meetings_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("meeting_id", sa.Integer(), sa.ForeignKey("meetings.id"), nullable=False),
        sa.Column("occurrence", sa.String(32), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_meetings_notes_meeting_id", "meetings_notes", ["meeting_id"])


def downgrade() -> None:
    op.drop_index("ix_meetings_notes_meeting_id", table_name="meetings_notes")
    op.drop_table("meetings_notes")
    op.drop_table("meetings_attendance")
    op.drop_table("meetings_rsvps")
    op.drop_table("meetings_changes")
    op.drop_index("ix_meetings_announcement", table_name="meetings")
    op.drop_index("ix_meetings_community_id", table_name="meetings")
    op.drop_table("meetings")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("reminders")
