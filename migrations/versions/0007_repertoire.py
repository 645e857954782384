"""Repertoire: items, upvotes, uses, and the full-text index (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', replace(coalesce(tags, ''), ',', ' ')), 'B') || "
    "setweight(to_tsvector('english', coalesce(body, '')), 'C')"
)


def upgrade() -> None:
    op.create_table(
        "repertoire_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, server_default=""),
        sa.Column("url", sa.String(1000), nullable=False, server_default=""),
        sa.Column("tags", sa.String(500), nullable=False, server_default=""),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("added_by_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("origin_platform", sa.String(32), nullable=True),
        sa.Column("origin_room", sa.String(255), nullable=True),
        sa.Column("origin_message_id", sa.String(255), nullable=True),
        sa.Column("source_link", sa.String(1000), nullable=False, server_default=""),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("copied_from_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_by_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint(
            "community_id", "origin_platform", "origin_message_id", name="uq_repertoire_origin"
        ),
    )
    op.create_index("ix_repertoire_items_author_id", "repertoire_items", ["author_id"])
    op.create_index("ix_repertoire_community_kind", "repertoire_items", ["community_id", "kind"])
    op.create_table(
        "repertoire_upvotes",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("repertoire_items.id"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "repertoire_uses",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("repertoire_items.id"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE repertoire_items ADD COLUMN search tsvector "
            f"GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_repertoire_search ON repertoire_items USING GIN (search)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE repertoire_fts USING fts5("
            "item_id UNINDEXED, title, tags, body, tokenize = 'porter unicode61')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_repertoire_search")
    else:
        op.execute("DROP TABLE IF EXISTS repertoire_fts")
    op.drop_table("repertoire_uses")
    op.drop_table("repertoire_upvotes")
    op.drop_index("ix_repertoire_community_kind", table_name="repertoire_items")
    op.drop_index("ix_repertoire_items_author_id", table_name="repertoire_items")
    op.drop_table("repertoire_items")
