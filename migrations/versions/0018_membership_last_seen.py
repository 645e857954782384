"""When each member last did anything in each community: ``memberships.last_seen``.

Participation levels move a member who has been silent for ``transactional_after`` to transactional, and a
transactional member who is active again back to peripheral. They read ``members.last_seen``, which any
activity anywhere updates: a member silent here but busy in a sister community never left peripheral here,
and a transactional member here came back with a message written elsewhere. The journal now writes the
time per community as well; here it is filled from each member's newest activity in each community (the
activity rows are kept for ever), through ``ix_activity_member_window`` (member, community, time).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch_op:
        batch_op.add_column(sa.Column("last_seen", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE memberships SET last_seen = ("
        "SELECT max(a.at) FROM activity_events AS a "
        "WHERE a.member_id = memberships.member_id AND a.community_id = memberships.community_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch_op:
        batch_op.drop_column("last_seen")
