"""Participation level on memberships; welcome texts; profiles, onboarding, introductions, profile search.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 19:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("level", sa.String(16), nullable=False, server_default="peripheral"))
    op.create_table(
        "welcome_templates",
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), primary_key=True),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "profiles",
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("org", sa.String(200), nullable=False),
        sa.Column("org_type", sa.String(32), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("expertise", sa.Text(), nullable=False, server_default=""),
        sa.Column("interests", sa.Text(), nullable=False, server_default=""),
        sa.Column("intros", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "profiles_onboarding",
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "profiles_introductions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id"), nullable=True),
        sa.Column("member_a", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("member_b", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_profiles_introductions_pair", "profiles_introductions", ["member_a", "member_b"])
    if op.get_bind().dialect.name == "sqlite":
        # Ranked full-text search over profiles (bm25); PostgreSQL ranks with tsvector at query time.
        op.execute(
            "CREATE VIRTUAL TABLE profiles_fts USING fts5("
            "member_id UNINDEXED, expertise, interests, org, tokenize = 'porter unicode61')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE profiles_fts")
    op.drop_index("ix_profiles_introductions_pair", table_name="profiles_introductions")
    op.drop_table("profiles_introductions")
    op.drop_table("profiles_onboarding")
    op.drop_table("profiles")
    op.drop_table("welcome_templates")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("level")
