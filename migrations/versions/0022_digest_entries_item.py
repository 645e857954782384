"""Which repertoire item a kept digest's line shows: ``digest_entries.item_id``.

The entries said whose item a line showed (``item_by``), for ``profile forget --remove-items``, but not
which: an item removed otherwise (``repertoire remove``, or deleted with its 📌-saved message) kept its
title in the digests' web copies. The entries written before are filled from their lines, which the
repertoire writes beginning with the item's number ("#12 [tool] Leak map — …", "#12 Leak map · 3▲").

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 02:40:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_NUMBER = re.compile(r"#(\d+) ")


def upgrade() -> None:
    with op.batch_alter_table("digest_entries") as batch_op:
        batch_op.add_column(sa.Column("item_id", sa.Integer(), nullable=True))
    op.create_index("ix_digest_entries_item_id", "digest_entries", ["item_id"])
    entries = sa.table(
        "digest_entries",
        sa.column("id", sa.Integer()),
        sa.column("line"),
        sa.column("item_by"),
        sa.column("item_id"),
    )
    bind = op.get_bind()
    for entry_id, line in bind.execute(
        sa.select(entries.c.id, entries.c.line).where(entries.c.item_by.is_not(None))
    ):
        if match := _NUMBER.match(line):
            bind.execute(entries.update().where(entries.c.id == entry_id).values(item_id=int(match.group(1))))


def downgrade() -> None:
    op.drop_index("ix_digest_entries_item_id", table_name="digest_entries")
    with op.batch_alter_table("digest_entries") as batch_op:
        batch_op.drop_column("item_id")
