"""a partial index for the SC-16 downgrade sweep

Revision ID: 7d3c2a9e5b10
Revises: 16256a59ea61
Create Date: 2026-11-25 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7d3c2a9e5b10"
down_revision = "16256a59ea61"
branch_labels = None
depends_on = None

SEV_A_SILENCE = "severity = 'A' AND downgrade_offered_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_case_sev_a_silence",
        "case",
        ["customer_last_seen_at"],
        postgresql_where=sa.text(SEV_A_SILENCE),
        sqlite_where=sa.text(SEV_A_SILENCE),
    )


def downgrade() -> None:
    op.drop_index("ix_case_sev_a_silence", table_name="case")
