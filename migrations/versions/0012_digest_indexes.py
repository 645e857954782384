"""Indexes for the digest of a large community: activity in a period read from the index alone, and the
upvotes given in a period found by time.

``ix_activity_community_window`` (community, time, kind, member) replaces ``ix_activity_community_at``
(community, time), its prefix: every query the old one served it serves, and the digest's and ``stats``'s
figures (messages, active members, contributions in a window) need no table rows at all.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activity_events") as batch_op:
        batch_op.create_index(
            "ix_activity_community_window", ["community_id", "at", "kind", "member_id"], unique=False
        )
        batch_op.drop_index("ix_activity_community_at")
    with op.batch_alter_table("repertoire_upvotes") as batch_op:
        batch_op.create_index("ix_repertoire_upvotes_at", ["at", "item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repertoire_upvotes") as batch_op:
        batch_op.drop_index("ix_repertoire_upvotes_at")
    with op.batch_alter_table("activity_events") as batch_op:
        batch_op.create_index("ix_activity_community_at", ["community_id", "at"], unique=False)
        batch_op.drop_index("ix_activity_community_window")
