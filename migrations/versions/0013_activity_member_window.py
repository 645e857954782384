"""An index for participation levels: each member's activity in a window read from the index alone.

``ix_activity_member_window`` (member, community, time, kind) replaces ``ix_activity_member_at`` (member,
time). The nightly evaluation walks the members in order and reads each one's rows of the last 30 days in
the community straight from it, already grouped by member — no table rows, no sort of millions of rows
(see plugins/roles/queries.py). Every query the old index served (a member's activity) it serves, and the
journal still keeps two indexes on the table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activity_events") as batch_op:
        batch_op.create_index(
            "ix_activity_member_window", ["member_id", "community_id", "at", "kind"], unique=False
        )
        batch_op.drop_index("ix_activity_member_at")


def downgrade() -> None:
    with op.batch_alter_table("activity_events") as batch_op:
        batch_op.create_index("ix_activity_member_at", ["member_id", "at"], unique=False)
        batch_op.drop_index("ix_activity_member_window")
