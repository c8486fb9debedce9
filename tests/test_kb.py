"""The knowledge base: loading markdown articles and searching them (SC-6, SC-25), on SQLite
and on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text
from sqlmodel import Session, SQLModel, select

from chatops.db import create_schema, make_engine, reading
from chatops.directory import find_person
from chatops.kb import (
    ArticleHit,
    LoadSummary,
    ensure_search_index,
    load_articles,
    search,
    search_articles,
)
from chatops.kb.loader import markdown_to_text, read_articles
from chatops.kb.search import (
    SNIPPET_MAX,
    _stem,
    fts5_query,
    make_snippet,
    pg_tsquery,
    query_tokens,
)
from chatops.yamlfile import FileError
from models.article import Article
from tests.conftest import ROOT, Desk

KB = ROOT / "examples" / "kb"

# A question people type → the shipped article that must come first.
RANKING = [
    ("forward mail to another address", "mail-forwarding"),
    ("mail forwarding stopped", "mail-forwarding"),
    ("shared mailbox", "shared-mailboxes"),
    ("password never expire", "password-expiry"),
    ("how do I make a password never expire?", "password-expiry"),
    ("add licences", "add-remove-licences"),
    ("remove licenses", "add-remove-licences"),
    ("send button not working", "send-button-fails"),
    ("user cannot delete contacts", "delete-contacts"),
    ("autodiscover", "autodiscover"),
    ("migrate mailboxes", "mailbox-migration"),
    ("give my assistant access to my mailbox", "mailbox-permissions"),
    ("share documents with guests", "external-sharing"),
    ("site access denied", "site-permissions"),
    ("install the meeting client and add contacts", "chat-meetings-setup"),
    ("install desktop apps", "install-desktop-apps"),
    ("single sign-on", "single-sign-on"),
    ("directory sync errors", "directory-sync"),
    ("why is my bill higher", "understand-your-bill"),
    ("convert trial to paid", "trial-to-paid"),
    ("cancel subscription", "cancel-subscription"),
    ("is the service down", "service-health"),
    ("severity response time", "contact-support"),
    ("licen", "add-remove-licences"),  # still typing: the last word is a prefix
]

HOSTILE = [
    "",
    "   ",
    '"',
    '"unbalanced quote',
    "***",
    "mail*",
    "-mail -forwarding",
    "title:forwarding",
    "body: : :",
    "NEAR(mail forwarding, 3)",
    "mail NEAR forwarding",
    "AND OR NOT",
    "mail AND OR forwarding NOT",
    "((mail) forwarding",
    ")(",
    "<!channel> help",
    "<@U0ALICE> <#C0TRIAGE|triage>",
    "&amp; &lt;script&gt;",
    "😀🔥 mail 💌",
    "🙈",
    "'; DROP TABLE article; --",
    "\\ \\' \\\"",
    "a" * 500,
    "mail " * 100,
    " ".join(f"word{i}" for i in range(120)),
    "!:*^~'|&<>()[]{}",
    "x:*",
    "'mail':* | !forward",
    "ĉu la poŝto ŝanĝiĝis? Straße ﬁle",
    "邮件转发 停止",
    "\x00\x01 null bytes \u200b zero width",
    "__init__ _ __",
]

VENDOR_NAMES = re.compile(
    r"\b(microsoft|office ?365|outlook|exchange online|sharepoint|teams|onedrive|azure|entra|"
    r"skype|google|gmail|windows)\b",
    re.IGNORECASE,
)
MARKUP = re.compile(r"\*\*|__|`|\]\(|^#|\s#{1,6}\s|<[a-z/!@#]|^\s*[-*+]\s")


def _sqlite(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    return engine


def _write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def _articles(engine: Engine) -> dict[str, Article]:
    with Session(engine) as session:
        return {a.slug: a for a in session.exec(select(Article)).all()}


GOOD = """---
title: Forward mail to another address
tags: [mail, forwarding]
services: [mail]
url: https://support.example.com/articles/forwarding
---
Turn on **forwarding** in the [admin centre](https://admin.example.com).
"""

HEADED = """
# Reset a *user's* password

Open `Users`, choose the user, then **Reset password**.
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _sqlite(tmp_path / "kb.db")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A SQLite database with the shipped articles (read-only for the tests that use it)."""
    engine = _sqlite(tmp_path_factory.mktemp("shipped") / "kb.db")
    load_articles(engine, KB)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_shipped(pg_engine: Engine) -> Engine:
    create_schema(pg_engine)
    load_articles(pg_engine, KB)
    return pg_engine


# --- the loader ------------------------------------------------------------------------------


def test_front_matter_and_heading_titles(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", GOOD)
    _write(folder, "reset-password.md", HEADED)
    moment = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    summary = load_articles(engine, folder, now=lambda: moment)
    assert summary == LoadSummary(added=2)
    assert str(summary) == "2 added, 0 updated, 0 unchanged, 0 removed (2 articles)."
    rows = _articles(engine)
    forwarding = rows["forwarding"]
    assert forwarding.title == "Forward mail to another address"
    assert forwarding.tags == ["mail", "forwarding"] and forwarding.services == ["mail"]
    assert forwarding.url == "https://support.example.com/articles/forwarding"
    assert forwarding.body.startswith("Turn on **forwarding**")  # front matter not in the body
    assert forwarding.body_text == "Turn on forwarding in the admin centre."
    assert forwarding.updated_at == moment
    assert len(forwarding.content_hash) == 64
    reset = rows["reset-password"]
    # The heading is the title (as plain text) and is not repeated in the body.
    assert reset.title == "Reset a user's password"
    assert reset.body == "Open `Users`, choose the user, then **Reset password**.\n"
    assert reset.url is None and reset.tags == []
    assert search_articles(engine, "reset password")[0].slug == "reset-password"


BAD_FILES: dict[str, tuple[str, str]] = {
    "empty body": ("---\ntitle: Nothing here\n---\n\n  \n", "no text below its title"),
    "heading only": ("# A title\n\n", "no text below its title"),
    "comment only": ("# A title\n<!--\nto be written\n-->\n", "no text below its title"),
    "no title": ("Just some text without a heading.\n", "line 1: no title"),
    "no title after front matter": ("---\ntags: [x]\n---\nText.\n", "line 4: no title"),
    "bad yaml": ("---\ntitle: Fine\ntags: [a, b\n---\nText.\n", "line 3: expected"),
    "unknown key": ("---\ntitle: Fine\ntittle: typo\n---\nText.\n", "line 3: tittle"),
    "tags not a list": ("---\ntitle: Fine\ntags: 3\n---\nText.\n", "line 3: tags"),
    "empty title": ("---\ntitle: '  '\n---\nText.\n", "line 2: title: the title is empty"),
    "bad url": ("---\ntitle: Fine\nurl: ftp://x\n---\nText.\n", "line 3: url"),
    "front matter not a mapping": ("---\n- a\n- b\n---\nText.\n", "line 2"),
    "unclosed front matter": ("---\ntitle: Fine\nText.\n", "line 1: the front matter"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_an_invalid_file_names_file_and_line_and_loads_nothing(
    case: str, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", GOOD)  # valid, sorted first: a half-load would show
    _write(folder, "zz-broken.md", BAD_FILES[case][0])
    with pytest.raises(FileError) as raised:
        load_articles(engine, folder)
    assert raised.value.path.endswith("zz-broken.md")
    assert "zz-broken.md" in str(raised.value)
    assert BAD_FILES[case][1] in str(raised.value)
    assert _articles(engine) == {}
    assert search_articles(engine, "forwarding") == []


def test_a_bad_file_leaves_the_loaded_base_untouched(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", GOOD)
    load_articles(engine, folder)
    before = _articles(engine)
    _write(folder, "forwarding.md", GOOD.replace("forwarding**", "redirecting**"))
    _write(folder, "broken.md", "no title\n")
    with pytest.raises(FileError):
        load_articles(engine, folder)
    assert _articles(engine).keys() == before.keys()
    assert _articles(engine)["forwarding"].content_hash == before["forwarding"].content_hash


def test_several_bad_files_are_all_reported(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    _write(folder, "a.md", "no title\n")
    _write(folder, "b.md", "---\ntitle: x\nbad: 1\n---\nText\n")
    with pytest.raises(FileError) as raised:
        read_articles(folder)
    problems = raised.value.problems
    assert problems[0].startswith("a.md: line 1: no title")
    assert problems[1].startswith("b.md: line 3: bad")


@pytest.mark.parametrize("name", ["Mail Forwarding.md", "-x.md", "UPPER.md"])
def test_file_names_must_be_slugs(name: str, tmp_path: Path) -> None:
    _write(tmp_path, name, GOOD)
    with pytest.raises(FileError, match="must be a slug"):
        read_articles(tmp_path)


def test_missing_or_empty_directory_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(FileError, match="not a directory"):
        load_articles(engine, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty", "notes.txt", "not markdown")
    with pytest.raises(FileError, match="refusing to remove every article"):
        load_articles(engine, tmp_path / "empty")


def test_reload_is_idempotent_updates_and_removes(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", GOOD)
    _write(folder, "reset-password.md", HEADED)
    first = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    later = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    load_articles(engine, folder, now=lambda: first)
    again = load_articles(engine, folder, now=lambda: later)
    assert again == LoadSummary(unchanged=2) and not again.changed
    assert str(again) == "already up to date, nothing changed (2 articles)."
    assert {a.updated_at for a in _articles(engine).values()} == {first}

    # An edited file is updated, and the index follows: new words found, old ones gone.
    _write(folder, "forwarding.md", GOOD.replace("**forwarding**", "**redirection**"))
    (folder / "reset-password.md").unlink()
    _write(folder, "shared-mailbox.md", "# Shared mailboxes\n\nOne address for a team.\n")
    changed = load_articles(engine, folder, now=lambda: later)
    assert changed == LoadSummary(added=1, updated=1, removed=1)
    rows = _articles(engine)
    assert set(rows) == {"forwarding", "shared-mailbox"}
    assert rows["forwarding"].updated_at == later
    assert [h.slug for h in search_articles(engine, "redirection")] == ["forwarding"]
    assert search_articles(engine, "reset password") == []
    assert [h.slug for h in search_articles(engine, "team")] == ["shared-mailbox"]


def test_markdown_becomes_plain_text() -> None:
    markdown = """## Steps

1. Open *Settings* → **Mail** and `Forwarding`.
2. See [the guide](https://example.com/guide) or <https://example.com>.

| group | can |
|---|---|
| Owners | everything |

> Note: _really_ ~~not~~ important
---
```
code line
```
"""
    assert markdown_to_text(markdown).split("\n") == [
        "Steps.",
        "Open Settings → Mail and Forwarding.",
        "See the guide or https://example.com.",
        "group · can.",
        "Owners · everything.",
        "Note: really not important.",
        "code line.",
    ]


def test_shipped_articles_cover_the_topics() -> None:
    articles = read_articles(KB)
    assert len(articles) >= 15
    for article in articles:
        assert article.tags and article.services, article.slug
        raw = (KB / f"{article.slug}.md").read_text(encoding="utf-8")
        assert not VENDOR_NAMES.search(raw), (article.slug, VENDOR_NAMES.search(raw))


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "slug"), RANKING)
def test_ranking_on_sqlite(shipped: Engine, question: str, slug: str) -> None:
    hits = search_articles(shipped, question)
    assert hits, question
    assert hits[0].slug == slug, [(h.slug, h.score) for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_carry_title_url_and_a_plain_snippet(shipped: Engine) -> None:
    hits = search_articles(shipped, "forward mail to another address", limit=5)
    assert len(hits) == 5
    top = hits[0]
    assert isinstance(top, ArticleHit)
    assert top.title == "Forward mail to another address"
    assert top.url == "https://support.example.com/articles/mail-forwarding"
    assert "forward" in top.snippet.lower()
    for hit in hits:
        assert 0 < len(hit.snippet) <= SNIPPET_MAX
        assert not MARKUP.search(hit.snippet), hit.snippet
        assert hit.score > 0


def test_session_and_engine_give_the_same_results(shipped: Engine) -> None:
    with Session(shipped) as session:
        via_session = search_articles(session, "shared mailbox")
    assert via_session == search_articles(shipped, "shared mailbox")
    assert search_articles(shipped, "shared mailbox", limit=1) == via_session[:1]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_text_never_raises(shipped: Engine, question: str) -> None:
    for limit in (1, 3):
        hits = search_articles(shipped, question, limit=limit)
        assert len(hits) <= limit
        assert all(len(h.snippet) <= SNIPPET_MAX for h in hits)


def test_nothing_to_search_for_gives_nothing(shipped: Engine) -> None:
    assert search_articles(shipped, "") == []
    assert search_articles(shipped, "how do I ... ? !") == []  # filler words only
    assert search_articles(shipped, "mail", limit=0) == []
    assert search_articles(shipped, "zzyzx qqqq") == []


def test_queries_are_built_from_word_tokens_only() -> None:
    tokens = query_tokens('How do I "forward" NEAR(mail) -to <!channel>* Straße? 😀')
    assert tokens == ["forward", "near", "mail", "channel", "straße"]
    assert fts5_query(["forward", "mail"]) == '"forward" OR "mail" OR "mail"*'
    assert fts5_query(["forward", "ab"]) == '"forward" OR "ab"'  # too short for a prefix
    assert pg_tsquery(["forward", "mail"]) == "'forward' | 'mail' | 'mail':*"
    assert len(query_tokens(" ".join(f"w{i}" for i in range(100)))) == 32


@settings(max_examples=150, deadline=None)
@given(question=st.text(max_size=500), limit=st.integers(min_value=0, max_value=5))
def test_any_text_is_safe_on_sqlite(shipped: Engine, question: str, limit: int) -> None:
    hits = search_articles(shipped, question, limit=limit)
    assert len(hits) <= limit
    assert all(len(h.snippet) <= SNIPPET_MAX for h in hits)


# --- snippets -------------------------------------------------------------------------------

LONG_BODY = (
    "Forwarding sends a copy of every message to another address. " * 3
    + "Sometimes nothing arrives. "
    + "Filler text about calendars and meetings. " * 6
    + "When forwarded mail stopped, check the outbound spam policy: it blocks forwarding "
    "to outside addresses by default. " + "More filler about licences and billing. " * 6
)
FILLER = "Nothing to see in this sentence at all. " * 8  # 320 characters without a match


def test_the_snippet_is_the_stretch_with_the_most_question_words() -> None:
    snippet = make_snippet(LONG_BODY, query_tokens("mail forwarding stopped"))
    # "forwarded", "mail" and "stopped" together beat the earlier stretch that only forwards
    assert snippet.startswith("…")
    assert "forwarded mail stopped" in snippet
    assert snippet.endswith("…")
    assert len(snippet) <= SNIPPET_MAX
    assert snippet.index("forwarded") < 40  # a few words of context first, not more
    # more distinct words win over more matches of one word
    body = FILLER + "mail mail mail mail. " + FILLER + "Mail forwarding here. " + FILLER
    assert "Mail forwarding here." in make_snippet(body, ["mail", "forwarding"])
    # a stretch only counts the words it shows whole (room for the two ellipses)
    body = "Beta " + "x " * 95 + "alpha " + "y " * 300 + "Here alpha and beta together. " + FILLER
    assert "Here alpha and beta together." in make_snippet(body, ["alpha", "beta"])


def test_words_match_by_stem_at_the_start_of_a_word_only() -> None:
    body = FILLER + "Email is not mail. Our mailboxes: forwards, FORWARDED, unforwarded. " + FILLER
    assert "Email is not mail. Our mailboxes" in make_snippet(body, ["mailbox"])
    found = make_snippet("x " * 150 + "Forwards were stopped." + " y" * 150, ["forwarding"])
    assert "Forwards were stopped." in found
    assert make_snippet("x " * 150 + "unforwarded" + " y" * 150, ["forwarding"]).startswith("x x")
    # Snowball makes "policy" "polici": the word still matches what the stem shares with it
    assert "spam policy now" in make_snippet(FILLER + "the spam policy now." + FILLER, ["policy"])
    assert "MAIL here" in make_snippet(FILLER + "MAIL here." + FILLER, ["Mail"])
    # one or two letters ("t" of "isn't") match whole words, not every word starting so
    assert make_snippet(FILLER + "the TB drive" + FILLER, ["t"]).startswith("Nothing")
    assert "the T drive" in make_snippet(FILLER + "the T drive" + FILLER, ["t"])
    assert query_tokens("why isn't forwarding working") == ["forwarding", "working"]


def test_the_matching_word_is_shown_even_without_a_space_before_it() -> None:
    url = "https://outlook.example.com/mail/options/mail/forwarding"
    snippet = make_snippet(FILLER + f"Open {url} and turn it off. " + FILLER, ["forwarding"])
    assert "forwarding and turn it off" in snippet
    assert make_snippet("a" * 40 + "-mail ", ["mail"]) == "…mail"


def test_a_snippet_without_a_match_is_the_start_of_the_body() -> None:
    assert make_snippet("Short article.", ["zebra"]) == "Short article."
    start = make_snippet(LONG_BODY, ["zebra"])
    assert start.startswith("Forwarding sends a copy")
    assert start.endswith("…") and len(start) <= SNIPPET_MAX
    assert make_snippet("", ["mail"]) == ""
    assert make_snippet("  \n ", []) == ""
    assert make_snippet("any body", ["''s", ""]) == "any body"  # a token with no stem


def test_whitespace_and_ellipses_in_the_body() -> None:
    spaced = make_snippet(("forwarding" + " " * 34) * 30, ["forwarding"])
    assert spaced.startswith("forwarding forwarding") and spaced.endswith("forwarding…")
    assert len(spaced) > SNIPPET_MAX - 12  # filled, although most of the text was spaces
    assert make_snippet("short text" + " " * 1000, ["zzz"]) == "short text"
    assert not make_snippet("wait… " * 40, ["zzz"]).endswith("……")
    assert make_snippet("x" * 100 + " mail", ["mail"], limit=10) == "…mail"
    assert make_snippet("mail", ["mail"], limit=1) == ""


def test_stemming_is_safe_from_many_threads() -> None:
    words = [
        f"{stem}{suffix}"
        for stem in ("forward", "polic", "mailbox", "licen", "deliver")
        for suffix in ("", "s", "ing", "ed", "y", "ies", "ce", "ation")
    ]
    expected = {word: _stem.__wrapped__(word) for word in words}
    problems: list[str] = []

    def stem_all() -> None:
        for _ in range(200):
            for word in words:
                got = _stem.__wrapped__(word)
                if got != expected[word]:
                    problems.append(f"{word}: {got}")

    threads = [threading.Thread(target=stem_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []


VOCABULARY = ["mail", "mailbox", "forward", "forwarding", "policy", "spam", "the", "x", "Ok"]


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(max_size=2000),
    tokens=st.lists(st.text(min_size=1, max_size=12), max_size=6),
)
def test_any_body_gives_a_short_plain_stretch_of_it(body: str, tokens: list[str]) -> None:
    snippet = make_snippet(body, tokens)
    assert len(snippet) <= SNIPPET_MAX
    assert snippet == snippet.strip()
    assert "  " not in snippet and "\n" not in snippet
    assert bool(snippet) == bool(body.strip())
    inner = snippet.removeprefix("…").removesuffix("…")
    assert inner.rstrip(" ,;:·-—…") in " ".join(body.split())


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(
        st.one_of(st.sampled_from(VOCABULARY), st.text("abcdefgh", min_size=1, max_size=9)),
        max_size=300,
    ),
    spaces=st.sampled_from([" ", "  ", "\n", " \n\t "]),
    tokens=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3),
)
def test_a_snippet_shows_a_match_and_marks_what_it_leaves_out(
    words: list[str], spaces: str, tokens: list[str]
) -> None:
    body = spaces.join(words)
    collapsed = " ".join(words)
    snippet = make_snippet(body, tokens)
    inner = snippet.removeprefix("…").removesuffix("…")
    assert inner in collapsed
    assert snippet.startswith("…") == (not collapsed.startswith(inner))
    assert snippet.endswith("…") == (not collapsed.endswith(inner))
    stems = {_stem(token.lower()) for token in tokens}

    def matches(word: str) -> bool:
        word = word.lower()
        return any(word.startswith(s) if len(s) >= 3 else word == s for s in stems)

    if any(matches(word) for word in words):
        assert any(matches(word) for word in inner.split()), (snippet, tokens)


SOUP = [
    '"',
    "*",
    "-",
    ":",
    "NEAR",
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "^",
    "mail",
    "forward",
    "<!channel>",
    "'",
    "|",
    "&",
    "!",
    "😀",
    "licen",
    "x",
    "{",
]


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.sampled_from(SOUP), max_size=30),
    joiner=st.sampled_from(["", " ", "  \n"]),
)
def test_fts_operator_soup_is_safe_on_sqlite(
    shipped: Engine, words: list[str], joiner: str
) -> None:
    assert len(search_articles(shipped, joiner.join(words))) <= 3


def test_search_index_is_idempotent_and_rebuilt_when_lost(engine: Engine, tmp_path: Path) -> None:
    # No index yet: searching creates it and finds nothing.
    assert search_articles(engine, "mail forwarding") == []
    ensure_search_index(engine)
    SQLModel.metadata.create_all(engine)  # create_all does not choke on the FTS table
    load_articles(engine, KB)
    # Lose the FTS table and its triggers: the next call recreates and refills them.
    with engine.begin() as conn:
        for name in ("article_fts_ai", "article_fts_ad", "article_fts_au"):
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        conn.exec_driver_sql("DROP TABLE article_fts")
    assert search_articles(engine, "shared mailbox")[0].slug == "shared-mailboxes"
    with engine.connect() as conn:
        integrity = "INSERT INTO article_fts(article_fts) VALUES ('integrity-check')"
        conn.exec_driver_sql(integrity)  # raises if the index disagrees with the table


def test_search_in_a_session_when_the_index_was_lost(engine: Engine) -> None:
    load_articles(engine, KB)
    with engine.begin() as conn:
        for name in ("article_fts_ai", "article_fts_ad", "article_fts_au"):
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        conn.exec_driver_sql("DROP TABLE article_fts")
    with Session(engine) as session:
        hits = search_articles(session, "shared mailbox")
        assert hits and hits[0].slug == "shared-mailboxes"
        # the session goes on working after the index was made beside it
        assert search_articles(session, "shared mailbox") == hits


def _drop_sqlite_index(engine: Engine) -> None:
    with engine.begin() as conn:
        for name in ("article_fts_ai", "article_fts_ad", "article_fts_au"):
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        conn.exec_driver_sql("DROP TABLE article_fts")


def test_a_trusted_index_that_went_away_is_rebuilt(engine: Engine) -> None:
    # A process that has searched trusts the index for a while without asking the catalogue;
    # when a search then finds it gone, it rebuilds it rather than failing the request.
    load_articles(engine, KB)
    assert search_articles(engine, "shared mailbox")[0].slug == "shared-mailboxes"
    _drop_sqlite_index(engine)
    assert search_articles(engine, "shared mailbox")[0].slug == "shared-mailboxes"
    _drop_sqlite_index(engine)
    with reading(engine) as session:  # the way `/support` searches
        assert search_articles(session, "shared mailbox")[0].slug == "shared-mailboxes"
        assert search_articles(session, "shared mailbox")[0].slug == "shared-mailboxes"


def test_a_trusted_index_is_asked_about_again_after_a_while(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_articles(engine, KB)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(3):
        search_articles(engine, "shared mailbox")
    catalogue = [s for s in statements if "sqlite_master" in s]
    assert len(catalogue) == 1  # asked once, then trusted
    monkeypatch.setattr(search, "INDEX_RECHECK_SECONDS", 0.0)
    search_articles(engine, "shared mailbox")
    assert len([s for s in statements if "sqlite_master" in s]) == len(catalogue) + 1


def test_a_fresh_database_with_no_tables(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")  # no create_schema
    assert search_articles(engine, "mail") == []
    assert load_articles(engine, KB).added >= 15
    engine.dispose()


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_ranking_on_postgres(pg_shipped: Engine) -> None:
    wrong = {}
    for question, slug in RANKING:
        hits = search_articles(pg_shipped, question)
        if not hits or hits[0].slug != slug:
            wrong[question] = [(h.slug, round(h.score, 4)) for h in hits]
    assert wrong == {}
    top = search_articles(pg_shipped, "forward mail to another address", limit=5)
    assert top[0].title == "Forward mail to another address"
    assert top[0].url == "https://support.example.com/articles/mail-forwarding"
    for hit in top:
        assert 0 < len(hit.snippet) <= SNIPPET_MAX
        assert not MARKUP.search(hit.snippet), hit.snippet
    with Session(pg_shipped) as session:
        assert search_articles(session, "shared mailbox") == search_articles(
            pg_shipped, "shared mailbox"
        )


@pytest.mark.postgres
def test_both_databases_show_the_same_snippets(shipped: Engine, pg_shipped: Engine) -> None:
    for question, _slug in RANKING:
        on_sqlite = {h.slug: h.snippet for h in search_articles(shipped, question, limit=20)}
        on_postgres = {h.slug: h.snippet for h in search_articles(pg_shipped, question, limit=20)}
        assert on_sqlite.keys() & on_postgres.keys(), question
        for slug in on_sqlite.keys() & on_postgres.keys():
            assert on_sqlite[slug] == on_postgres[slug], (question, slug)
            assert on_sqlite[slug], (question, slug)


@pytest.mark.postgres
def test_a_trusted_index_that_went_away_is_rebuilt_on_postgres(pg_shipped: Engine) -> None:
    assert search_articles(pg_shipped, "shared mailbox")[0].slug == "shared-mailboxes"
    with pg_shipped.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE article DROP COLUMN search")
    with reading(pg_shipped) as session:
        assert search_articles(session, "shared mailbox")[0].slug == "shared-mailboxes"
        assert find_person(session, "U-NOBODY") is None  # the session goes on working
    with Session(pg_shipped) as session:  # and in a transaction, which the failure ended
        with pg_shipped.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE article DROP COLUMN search")
        assert search_articles(session, "shared mailbox")[0].slug == "shared-mailboxes"
        assert find_person(session, "U-NOBODY") is None


@pytest.mark.postgres
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=st.text(max_size=500))
def test_any_text_is_safe_on_postgres(pg_shipped: Engine, question: str) -> None:
    assert len(search_articles(pg_shipped, question)) <= 3


@pytest.mark.postgres
def test_hostile_text_and_loader_on_postgres(pg_engine: Engine, tmp_path: Path) -> None:
    create_schema(pg_engine)  # the migrations leave the generated column and its index alone
    # Before any load the index is created on demand.
    assert search_articles(pg_engine, "mail") == []
    ensure_search_index(pg_engine)
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", GOOD)
    _write(folder, "reset-password.md", HEADED)
    assert load_articles(pg_engine, folder) == LoadSummary(added=2)
    assert load_articles(pg_engine, folder) == LoadSummary(unchanged=2)
    for question in HOSTILE:
        assert len(search_articles(pg_engine, question, limit=1)) <= 1, question
    _write(folder, "forwarding.md", GOOD.replace("**forwarding**", "**redirection**"))
    (folder / "reset-password.md").unlink()
    assert load_articles(pg_engine, folder) == LoadSummary(updated=1, removed=1)
    assert [h.slug for h in search_articles(pg_engine, "redirection")] == ["forwarding"]
    assert search_articles(pg_engine, "reset password") == []
    _write(folder, "broken.md", "no title\n")
    with pytest.raises(FileError):
        load_articles(pg_engine, folder)
    assert set(_articles(pg_engine)) == {"forwarding"}
    with pg_engine.connect() as conn:
        index = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'article_search_idx'")
        ).scalar()
    assert index is not None and "gin" in index.lower()


# --- the command line ------------------------------------------------------------------------


def _cli(env: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatops.cli", "load-articles", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_load_articles(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    count = len(list(KB.glob("*.md")))
    first = _cli(env, "examples/kb")
    assert first.returncode == 0, first.stderr
    assert f"examples/kb: {count} added, 0 updated, 0 unchanged, 0 removed" in first.stdout
    second = _cli(env, "examples/kb")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    bad = tmp_path / "bad"
    _write(bad, "oops.md", "---\ntitle: x\n")
    failed = _cli(env, str(bad))
    assert failed.returncode == 2
    assert "nothing was loaded" in failed.stderr and "oops.md" in failed.stderr


# --- through the front door ----------------------------------------------------------------


ARTICLE_LINK = re.compile(r"^• <https?://[^|>]+/articles/([a-z0-9_-]+)\|", re.MULTILINE)


def _listed(reply: dict[str, Any]) -> list[str]:
    """The slugs of the articles a `/support` answer lists, in order (the shipped articles
    link to `…/articles/<slug>`)."""
    sections = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    shown = next((s for s in sections if s.startswith("*Help articles")), "")
    return ARTICLE_LINK.findall(shown)


# Questions with a word PostgreSQL's `english` configuration drops as a stop word ("up",
# "out", "off", "not", "no", "very", "again") and SQLite's FTS5 does not: SC-6 suggestions
# must not depend on which database the desk runs on.
STOP_WORD_QUESTIONS = [
    "set up mail",
    "sign out of everything",
    "log off",
    "not working",
    "very slow",
    "no mail again",
    "users locked out",
]


@pytest.mark.postgres
def test_a_question_finds_the_same_articles_on_both_databases(
    shipped: Engine, pg_shipped: Engine
) -> None:
    for question in STOP_WORD_QUESTIONS:
        on_sqlite = {h.slug for h in search_articles(shipped, question, limit=50)}
        on_postgres = {h.slug for h in search_articles(pg_shipped, question, limit=50)}
        assert on_sqlite == on_postgres, question


@pytest.mark.postgres
def test_a_question_is_answered_alike_on_both_databases(desk: Desk, pg_desk: Desk) -> None:
    for question in ("set up mail", "log off", "very slow", "users locked out"):
        on_sqlite = _listed(desk.ask("U0ALICE", question))
        on_postgres = _listed(pg_desk.ask("U0ALICE", question))
        # bm25 and ts_rank may order them a little differently
        assert sorted(on_sqlite) == sorted(on_postgres), (question, on_sqlite, on_postgres)
    # "up" says nothing about the topic: mail articles, not "sign up for a trial"
    assert "trial-to-paid" not in _listed(desk.ask("U0ALICE", "set up mail"))


HIDDEN_NOTES = """---
title: Forward mail to another address
url: https://support.example.com/articles/forwarding
---
Turn on forwarding in the admin centre. <!-- internal: escalate to ticket 4411 -->

<!--
Reviewers: the workaround below is unsupported, keep quiet about it.
-->
Forwarded mail keeps its original sender.
"""


def test_html_comments_in_an_article_are_never_shown_or_searched(
    desk: Desk, tmp_path: Path
) -> None:
    # A comment in markdown is a note to the article's writers, not text for its readers.
    folder = tmp_path / "kb"
    _write(folder, "forwarding.md", HIDDEN_NOTES)
    load_articles(desk.engine, folder)
    reply = desk.ask("U0CARL", "mail forwarding stopped")
    shown = json.dumps(reply)
    assert _listed(reply) == ["forwarding"]
    assert "Turn on forwarding" in shown
    for hidden in ("internal", "4411", "Reviewers", "unsupported", "&lt;!--"):
        assert hidden not in shown, hidden
    assert _listed(desk.ask("U0CARL", "workaround unsupported")) == []
    assert markdown_to_text(HIDDEN_NOTES.split("---\n", 2)[2]) == (
        "Turn on forwarding in the admin centre.\nForwarded mail keeps its original sender."
    )
    # a heading inside a comment is not the title; a comment shown as code stays code
    _write(
        folder, "forwarding.md", "<!--\n# Draft title\n-->\n# Real title\n```\n<!-- x -->\n```\n"
    )
    (article,) = read_articles(folder)
    assert (article.title, article.body_text) == ("Real title", "<!-- x -->.")


@pytest.mark.parametrize(
    "question",
    [
        "邮件转发停止了",  # Chinese writes a question without spaces
        "メール転送が止まりました",
        "邮件转发\u3000停止了",  # an ideographic space
        "mail\u00a0forwarding",  # a no-break space
        "סיסמה",
    ],
)
def test_a_question_in_a_script_without_spaces_is_a_question(desk: Desk, question: str) -> None:
    # SC-6: subcommands are ASCII words; text in another script is someone asking for help.
    reply = desk.ask("U0ALICE", question)
    shown = json.dumps(reply, ensure_ascii=False)
    assert "not a `/support` subcommand" not in shown
    assert f"*Your question:* {question}" in shown
    assert "contact_support" in shown
    folder = Path(desk.engine.url.database).parent / "cjk"
    _write(folder, "forwarding-zh.md", "# 邮件转发\n\n在管理中心打开邮件转发。\n")
    load_articles(desk.engine, folder)
    if "\u3000" in question:  # words apart: each is searched
        assert "在管理中心打开邮件转发" in json.dumps(
            desk.ask("U0ALICE", question), ensure_ascii=False
        )


def test_a_single_ascii_word_is_still_a_subcommand(desk: Desk) -> None:
    assert "not a `/support` subcommand" in json.dumps(desk.ask("U0ALICE", "hepl"))
    assert "not a `/support` subcommand" in json.dumps(desk.ask("U0ALICE", "🙈"))


CACHE_ARTICLE = r"""# Clear the mail client's cache

Close the client, then delete the folder `%LOCALAPPDATA%\Client\RoamCache` and the key
HKEY_CURRENT_USER\Software\Client\Profiles. Prices are \*not\* affected \[really\].
"""


def test_backslashes_of_windows_paths_are_kept(desk: Desk, tmp_path: Path) -> None:
    # Markdown only gives a backslash a meaning before punctuation (`\*`): before a letter,
    # as in a Windows path or a registry key, it is text the reader must type.
    folder = tmp_path / "kb"
    _write(folder, "clear-cache.md", CACHE_ARTICLE)
    load_articles(desk.engine, folder)
    reply = desk.ask("U0CARL", "delete roamcache folder")
    sections = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    (section,) = [s for s in sections if s.startswith("*Help articles")]
    assert r"%LOCALAPPDATA%\Client\RoamCache" in section
    assert r"HKEY_CURRENT_USER\Software\Client\Profiles" in section
    assert "Prices are *not* affected [really]." in section
    assert "Clear the mail client" in json.dumps(desk.ask("U0CARL", "client profiles key"))
    assert markdown_to_text(r"# A \# heading \\ with C:\Temp") == r"A # heading \ with C:\Temp."


MAILBOXES_AND_PATHS = """# Where help requests go

Write to helpdesk@example.com, or watch https://status.example.com/mail/queue for delays.
Logs are in /var/log/mailflow.log; version 2.0 of the sync tool needs the new-style
connector, and C:\\Sync\\Profiles holds its settings.
"""

# Words people look for that sit inside an address, a link, a path or a version: PostgreSQL's
# parser keeps those as one token ("helpdesk@example.com") where SQLite's splits them.
GLUED_WORDS = [
    "contact helpdesk@example.com",
    "example helpdesk",
    "mail queue",
    "status page",
    "mailflow log",
    "sync profiles",
    "connector style",
]


@pytest.mark.postgres
def test_words_inside_addresses_and_paths_are_found_on_both_databases(
    desk: Desk, pg_desk: Desk, tmp_path: Path
) -> None:
    folder = tmp_path / "kb"
    _write(folder, "where-help-goes.md", MAILBOXES_AND_PATHS)
    _write(folder, "other.md", "# Calendars\n\nSomething about calendars.\n")
    for which in (desk, pg_desk):
        load_articles(which.engine, folder)
    for question in GLUED_WORDS:
        on_sqlite = json.dumps(desk.ask("U0ALICE", question))
        on_postgres = json.dumps(pg_desk.ask("U0ALICE", question))
        assert "Where help requests go" in on_sqlite, question
        assert "Where help requests go" in on_postgres, question


@pytest.mark.postgres
def test_a_search_column_of_an_older_version_is_made_again(pg_shipped: Engine) -> None:
    with pg_shipped.begin() as conn:  # as versions before punctuation was a space made it
        conn.exec_driver_sql("ALTER TABLE article DROP COLUMN search")
        conn.exec_driver_sql(
            "ALTER TABLE article ADD COLUMN search tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', body_text)) STORED"
        )
        conn.exec_driver_sql("CREATE INDEX article_search_idx ON article USING GIN (search)")
    ensure_search_index(pg_shipped)
    with pg_shipped.connect() as conn:
        made = conn.execute(
            text(
                "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef AS d JOIN pg_attribute "
                "AS a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
                "WHERE d.adrelid = 'article'::regclass AND a.attname = 'search'"
            )
        ).scalar()
    assert made is not None and "regexp_replace" in made
    assert search_articles(pg_shipped, "shared mailbox")[0].slug == "shared-mailboxes"


@pytest.mark.postgres
def test_the_last_word_is_no_prefix_of_a_stop_word_on_either_database(
    desk: Desk, pg_desk: Desk, tmp_path: Path
) -> None:
    # PostgreSQL's index holds no stop words, so "bot" as a prefix finds "both" on SQLite only.
    folder = tmp_path / "kb"
    _write(folder, "chat-bot.md", "# The chat bot\n\nAdd the bot to a channel.\n")
    _write(folder, "two-admins.md", "# Two admins\n\nBoth admins must approve it.\n")
    for which in (desk, pg_desk):
        load_articles(which.engine, folder)
    for question in ("chat bot", "approve bot"):
        on_sqlite = json.dumps(desk.ask("U0ALICE", question))
        on_postgres = json.dumps(pg_desk.ask("U0ALICE", question))
        for shown in (on_sqlite, on_postgres):
            assert ("Two admins" in shown) == (question == "approve bot"), (question, shown)


def test_a_front_matter_title_is_plain_text_on_one_line(desk: Desk, tmp_path: Path) -> None:
    # A title is shown in bold (or as a link): markdown or a line break in it would show as
    # stray asterisks and break the list of articles.
    folder = tmp_path / "kb"
    _write(
        folder,
        "reset-password.md",
        "---\ntitle: |\n  Reset a **user's**\n  password\n---\nOpen Users, then Reset password.\n",
    )
    load_articles(desk.engine, folder)
    reply = desk.ask("U0CARL", "reset password")
    sections = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    (shown,) = [s for s in sections if s.startswith("*Help articles")]
    assert "\n• *Reset a user's password*\nOpen Users, then Reset password." in shown
    _write(folder, "reset-password.md", "---\ntitle: '<br>'\n---\nText.\n")
    with pytest.raises(FileError, match="line 2: the title must be 1 to 200 characters"):
        read_articles(folder)


def test_a_chinese_sentence_gets_no_latin_full_stop(desk: Desk, tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    _write(
        folder, "forwarding-zh.md", "# 邮件转发\n\n在管理中心打开邮件转发。\n\n## 为什么停止了？\n"
    )
    load_articles(desk.engine, folder)
    shown = json.dumps(desk.ask("U0ALICE", "邮件转发"), ensure_ascii=False)
    assert "在管理中心打开邮件转发。 为什么停止了？" in shown, shown


@pytest.mark.postgres
def test_accents_are_matched_alike_on_both_databases(
    desk: Desk, pg_desk: Desk, tmp_path: Path
) -> None:
    # SQLite's FTS5 folds accents away (remove_diacritics); PostgreSQL's `english` does not.
    folder = tmp_path / "kb"
    _write(folder, "resume-upload.md", "# Résumé uploads\n\nAttach your résumé in the portal.\n")
    _write(folder, "resume-plain.md", "# Resume sync\n\nResume the paused sync.\n")
    for which in (desk, pg_desk):
        load_articles(which.engine, folder)
    for question in ("upload résumé", "upload resume", "RÉSUMÉ upload"):
        for which in (desk, pg_desk):
            shown = json.dumps(which.ask("U0ALICE", question), ensure_ascii=False)
            assert "Résumé uploads" in shown and "Resume sync" in shown, (question, shown)
            assert "Attach your résumé in the portal." in shown
