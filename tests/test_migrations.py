"""The migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlmodel import Session, select

from chatops.db import create_schema, make_engine
from chatops.kb import ensure_search_index, load_articles
from chatops.migrate import _config, current_revision, differences, upgrade
from models import Case, Page
from tests.conftest import Desk
from tests.postgres import fresh_database
from tests.test_long_text import work
from tests.test_stale_actions import DANA, WED_0840, _resolve, _sev_a

STOPPED_AT_ADDED_AFTER = "7d3c2a9e5b10"

ROOT = Path(__file__).resolve().parent.parent


def _check(url: str) -> None:
    engine = make_engine(url)
    try:
        create_schema(engine)
        assert current_revision(engine) is not None
        upgrade(engine)  # again: nothing to do
        ensure_search_index(engine)  # the knowledge base's own full-text structures
        load_articles(engine, ROOT / "examples" / "kb")
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'migrated.db'}")


@pytest.mark.postgres
def test_postgresql_schema_matches_the_models(postgres_server: str) -> None:
    _check(fresh_database(postgres_server))


def _pages_called_off_by_the_upgrade(desk: Desk) -> dict[str, bool]:
    """Pages as the release before `page.stopped_at` left them, then the upgrade: for each
    page (named by its case's title and its order), whether the upgrade marks it called off."""
    desk.clock.set(WED_0840)
    lowered = _sev_a(desk, "lowered")
    work(desk, DANA, lowered, "case_severity", "one mailbox only", severity="B")
    _sev_a(desk, "unanswered")
    desk.run_worker(WED_0840 + timedelta(hours=1), step=timedelta(minutes=5))  # all exhausted
    raised_again = _sev_a(desk, "raised again")
    work(desk, DANA, raised_again, "case_severity", "one mailbox only", severity="B")
    work(desk, DANA, raised_again, "case_severity", "everyone again", severity="A")
    _resolve(desk, DANA, desk.card(_sev_a(desk, "resolved")), "Mail flows.")
    with desk.engine.begin() as connection:
        command.downgrade(_config(connection), STOPPED_AT_ADDED_AFTER)
    upgrade(desk.engine)
    assert differences(desk.engine) == []
    with Session(desk.engine) as session:
        rows = session.exec(select(Page, Case).join(Case).order_by(Page.id)).all()  # type: ignore[arg-type,call-overload]
    seen: Counter[str] = Counter()
    marked = {}
    for page, case in rows:
        seen[case.title] += 1
        marked[f"{case.title} {seen[case.title]}"] = page.stopped_at is not None
    return marked


# The page-stopped_at migration tells a called-off page from one nobody answered in the data
# the release before it wrote, where both were only `exhausted`.
EXPECTED_CALLED_OFF = {
    "lowered 1": True,
    "unanswered 1": False,  # still Sev A and open: someone answering at last is wanted
    "raised again 1": True,  # superseded by the page of the raise
    "raised again 2": False,
    "resolved 1": True,
}


def test_the_upgrade_marks_the_pages_called_off_before_it(desk: Desk) -> None:
    assert _pages_called_off_by_the_upgrade(desk) == EXPECTED_CALLED_OFF


@pytest.mark.postgres
def test_the_upgrade_marks_the_pages_called_off_before_it_on_postgres(pg_desk: Desk) -> None:
    assert _pages_called_off_by_the_upgrade(pg_desk) == EXPECTED_CALLED_OFF
