"""The newest repertoire items indexed again on their own (SQLite): ``repertoire_recent``.

FTS5's bm25 weighs each word by how many rows of the whole index hold it, and counts them for every search:
a word in most of 100,000 items cost ~2.4 ms a search before a single row was ranked. A broad query is
ranked over its newest matches anyway (plugins/repertoire/search.py), so it is ranked in this smaller index
of the newest RECENT (10,000) items when its window lies there, the words weighed by how common they are
among those. The plugin keeps it the rows of ``repertoire_fts`` above its newest rowid less RECENT; here it
is filled from ``repertoire_fts`` the same way. PostgreSQL ranks without such counts: nothing to do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RECENT = 10_000  # plugins.repertoire.search.RECENT when this was written


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute(
        "CREATE VIRTUAL TABLE repertoire_recent USING fts5("
        "item_id UNINDEXED, title, tags, body, tokenize = 'porter unicode61')"
    )
    op.execute(
        "INSERT INTO repertoire_recent (rowid, item_id, title, tags, body) "
        "SELECT rowid, item_id, title, tags, body FROM repertoire_fts "
        f"WHERE rowid > (SELECT rowid FROM repertoire_fts ORDER BY rowid DESC LIMIT 1) - {RECENT}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS repertoire_recent")
