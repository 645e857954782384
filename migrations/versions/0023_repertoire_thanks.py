"""copbot's thanks for a message saved with 📌: ``repertoire_items.thanks_message_id``.

A saved message deleted on its platform takes its item with it, but copbot's "📌 Saved to the repertoire
as #N …" below it stayed, pointing at an item that is gone: its id was not kept. It is now, once the thanks
is sent, so that copbot can delete (Discord) or redact (Matrix) it with the item. Items saved before have
none: their thanks stay.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 02:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repertoire_items") as batch_op:
        batch_op.add_column(sa.Column("thanks_message_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repertoire_items") as batch_op:
        batch_op.drop_column("thanks_message_id")
