"""An index for suggesting repertoire items while a number is typed (Discord's autocomplete).

``ix_repertoire_titles`` (community, removed, id, title, kind) holds everything a suggestion reads. A
fragment of a title cannot be looked up in a B-tree (``%leak%``), so the suggestions scan a community's
items, newest first, until 25 match: through the table that meant reading every item's text too (a
fragment matching nothing in 60,000 items took 80–800 ms a keystroke); through this index only the
titles (~30 ms), and nothing but the newest entries when the fragment is common. Items are written when a
member shares or saves one: the index costs those writes little.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repertoire_items") as batch_op:
        batch_op.create_index(
            "ix_repertoire_titles", ["community_id", "removed_at", "id", "title", "kind"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("repertoire_items") as batch_op:
        batch_op.drop_index("ix_repertoire_titles")
