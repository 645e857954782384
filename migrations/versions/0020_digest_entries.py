"""The lines of a posted digest's web copy that name a member or show a repertoire item:
``digest_entries``. ``profile forget`` and ``profile set public off`` change a member's name where the
digest wrote it — a name they had then, too — and ``forget --remove-items`` the lines of their items,
instead of replacing their current name as a word anywhere in the copy. Digests posted before have no
entries and are scrubbed as before.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("digest_posts.id"), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", sa.Integer(), nullable=False),
        sa.Column("item_by", sa.Integer(), nullable=True),
    )
    op.create_index("ix_digest_entries_post_id", "digest_entries", ["post_id"])
    op.create_index("ix_digest_entries_member", "digest_entries", ["member_id"])
    op.create_index("ix_digest_entries_item_by", "digest_entries", ["item_by"])


def downgrade() -> None:
    op.drop_index("ix_digest_entries_item_by", table_name="digest_entries")
    op.drop_index("ix_digest_entries_member", table_name="digest_entries")
    op.drop_index("ix_digest_entries_post_id", table_name="digest_entries")
    op.drop_table("digest_entries")
