"""a page called off (its case left Sev A or was resolved) says so: page.stopped_at

Revision ID: c5e8a1d4b7f2
Revises: 7d3c2a9e5b10
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import models.types

revision = "c5e8a1d4b7f2"
down_revision = "7d3c2a9e5b10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("page", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stopped_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
    # Before this column a called-off page looked like one nobody answered (both were
    # `exhausted`), and its Acknowledge still took the case. An unacknowledged exhausted
    # page is called off unless it is the latest page of a case still open at Sev A: a case
    # below Sev A or resolved stopped its pages, and a newer page means the case left Sev A
    # and was raised again. When it was stopped is not known: the upgrade's time stands in.
    page = sa.table(
        "page",
        sa.column("id", sa.Integer()),
        sa.column("case_id", sa.Integer()),
        sa.column("acknowledged_at", models.types.UTCDateTime()),
        sa.column("exhausted", sa.Boolean()),
        sa.column("stopped_at", models.types.UTCDateTime()),
    )
    case = sa.table(
        "case",
        sa.column("id", sa.Integer()),
        sa.column("severity", sa.String()),
        sa.column("status", sa.String()),
    )
    newer = page.alias("newer")
    op.execute(
        page.update()
        .where(
            page.c.acknowledged_at.is_(None),
            page.c.exhausted.is_(True),
            sa.or_(
                page.c.case_id.in_(
                    sa.select(case.c.id).where(
                        sa.or_(case.c.severity != "A", case.c.status.in_(["resolved", "closed"]))
                    )
                ),
                sa.exists().where(newer.c.case_id == page.c.case_id, newer.c.id > page.c.id),
            ),
        )
        .values(stopped_at=datetime.now(UTC))
    )


def downgrade() -> None:
    with op.batch_alter_table("page", schema=None) as batch_op:
        batch_op.drop_column("stopped_at")
