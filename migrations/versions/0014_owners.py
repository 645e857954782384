"""Owners for scheduled jobs and queued messages: several copbot processes on one database.

``apscheduler_jobs.owner`` is the community (slug) a job belongs to, or ``@<instance>`` for a process's
own periodic work; a process serving some communities runs only their jobs (bot/scheduler.py).
``outbox.owner`` is the instance that queued a message; a process sends only its own instance's messages
(its standby, having the same name, sends what it left unsent). Rows from before read "" — a process
serving every community runs and sends those, and the plugins' own deadlines give jobs their owner at the
next start.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apscheduler_jobs") as batch_op:
        batch_op.add_column(sa.Column("owner", sa.Unicode(64), nullable=False, server_default=""))
        batch_op.create_index("ix_apscheduler_jobs_owner", ["owner", "next_run_time"], unique=False)
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("owner")
    with op.batch_alter_table("apscheduler_jobs") as batch_op:
        batch_op.drop_index("ix_apscheduler_jobs_owner")
        batch_op.drop_column("owner")
