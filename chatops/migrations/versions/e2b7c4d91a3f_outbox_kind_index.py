"""an index on outboxmessage.kind: /metrics counts the SLA notices given at every scrape

Revision ID: e2b7c4d91a3f
Revises: c5e8a1d4b7f2
Create Date: 2026-12-03 15:20:00
"""

from __future__ import annotations

from alembic import op

revision = "e2b7c4d91a3f"
down_revision = "c5e8a1d4b7f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The outbox keeps every notification ever sent: without it a scrape read the whole
    # table (0.2 s at half a million rows on SQLite), every scrape interval.
    op.create_index("ix_outboxmessage_kind", "outboxmessage", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_outboxmessage_kind", table_name="outboxmessage")
