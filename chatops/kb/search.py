"""Full-text search over the knowledge base, ranked, on SQLite and PostgreSQL alike.

`search_articles(session_or_engine, query, limit=3)` returns the best matches for whatever a
person typed. The text is never handed to a query parser as is: word tokens are extracted
(letters and digits, lower-cased, common English filler words dropped, at most 32 distinct
ones), and the query is built from them — each token quoted on SQLite, each token a quoted
lexeme on PostgreSQL — so quotes, `*`, `-`, `:`, `NEAR`, `AND`, parentheses, `<!channel>`,
emoji or 500 characters of anything never raise a syntax error. The tokens are OR-ed: a
question rarely uses every word of the article that answers it, and the ranking puts the
articles matching more (and rarer) words first. The last token also matches as a prefix when
it has 3 or more characters (the person may still be typing it) and does not begin a stop
word.

Ranking:

- **SQLite**: an FTS5 table `article_fts` (tokenizer `porter unicode61`: case-folded, accents
  removed, English stemming, so "forwarding" finds "forward") over the article's title, plain
  body and keywords (tags and services), as external content of `article` kept in sync by
  triggers. Ranked by `bm25()` with the title weighted 10, the keywords 4 and the body 1.
- **PostgreSQL**: a stored generated `tsvector` column `article.search` — the title at weight
  A, keywords and body at weight B (`english` configuration: stemming and stop words), ASCII
  punctuation read as a space so that the words of an address, a link or a path are words as
  on SQLite, and accents removed as on SQLite (the question's words lose theirs before
  either database sees them) — with a GIN index. The query is `to_tsquery('english', …)` of
  the quoted tokens joined by `|`, ranked by `ts_rank` (weights D 0.1, C 0.2, B 0.4, A 1.0) with
  normalisation 1 (the rank divided by 1 + the log of the document length) so long articles
  do not win on bulk. On the shipped articles this put the expected article first for every
  question in the tests; `ts_rank_cd` with the same normalisation did not ("how to contact
  support" ranked the article about deleting contacts first: cover density rewards one word
  repeated).
  `websearch_to_tsquery` / `plainto_tsquery` were not used: their implicit AND returns nothing
  when the question has one word the answer lacks.

Snippets are made here, the same way on both databases (`make_snippet`): the stretch of at
most 200 characters of the article's plain body that shows the most of the question's
words, a word matching when it starts with the English (Snowball) stem of one, so
"forwarding" finds "forwarded"; whitespace collapsed, cut at words, an ellipsis where the
body goes on. The databases' own were not kept: PostgreSQL's `ts_headline` cost 0.6 ms of
its CPU per answer of three articles (a `/support` on PostgreSQL: 0.9 → 0.3 ms of the
server's CPU, in-process, on the cores that also serve the requests), while on SQLite the
Python snippets cost about what FTS5's `snippet()` did (a `/support`: 0.81–0.84 ms of CPU
before, 0.77–0.96 ms in runs since); and the two databases now show the same snippet for
the same article.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import snowballstemmer
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from chatops.db import WRITE_OPTION, base_engine
from models.article import Article

SNIPPET_MAX = 200
SNIPPET_LEAD = 30  # characters of a snippet before its first matching word, for context
MAX_TOKENS = 32
MAX_TOKEN_LENGTH = 40
PREFIX_MIN = 3
# bm25() weights per FTS5 column, in the column order of `article_fts`.
BM25_WEIGHTS = (10.0, 1.0, 4.0)

# Words that carry no topic in a support question, and the pieces that "isn't", "don't" or
# "we'll" split into. The second block is the rest of PostgreSQL's `english` stop list
# (tsearch_data/english.stop), which PostgreSQL drops from the query on its own: SQLite's FTS5
# would search for them ("set up mail" ranked every article with "sign up" first), so the same
# question would list other articles there. Dropped here, both databases search the same words.
_STOP_WORDS_TEXT = """
    a about after all also am an and any are as at be been being but by can could did do
    does doing done for from get gets getting got had has have having he her here hers him his
    how i if in into is it its itself just me my myself of on onto or our ours please she
    should so some such than that the their theirs them then there these they this those to
    too us was we were what when where which while who whom why will with would you your
    yours hi hello hey thanks thank
    isn aren wasn weren don doesn didn won wouldn couldn shouldn haven hasn hadn t s ll re ve

    ourselves yourself yourselves himself herself themselves because until against between
    through during before above below up down out off over under again further once both
    each few more most other no nor not only own same very now
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
# PostgreSQL's index holds no stop words and SQLite's holds them all, so a last word that
# begins one ("bot" of "both", "thr" of "through") matched it as a prefix on SQLite only: such
# a word is searched whole on both.
STOP_WORD_PREFIXES = frozenset(
    word[:end] for word in STOP_WORDS for end in range(PREFIX_MIN, len(word) + 1)
)

_TOKEN = re.compile(r"[^\W_]+")
# The combining accents (the Unicode blocks of combining diacritical marks). SQLite's FTS5
# folds them away ("résumé" is indexed and searched as "resume"), PostgreSQL's `english` does
# not: the question's words and PostgreSQL's index both lose them, so either spelling finds
# either on both databases.
_ACCENT_RANGES = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_ACCENTS = re.compile(f"[{_ACCENT_RANGES}]+")


def fold_accents(text: str) -> str:
    """The text without combining accents, composed again (NFC)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", _ACCENTS.sub("", unicodedata.normalize("NFD", text)))


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character without its accents, still one character (offsets in a body hold)."""
    folded = fold_accents(char)
    return folded if len(folded) == 1 else char


# The structures the models do not declare (schema comparison tools should leave them alone):
# on SQLite the FTS5 table (and its shadow tables `article_fts_*`) and its triggers, on
# PostgreSQL the generated column and its GIN index.
FTS_TABLE = "article_fts"
FTS_TRIGGERS = ("article_fts_ai", "article_fts_ad", "article_fts_au")
PG_SEARCH_COLUMN = "search"
PG_SEARCH_INDEX = "article_search_idx"
_PG_LOCK = 7_311_001  # pg_advisory_xact_lock key: one process creates the index at a time


@dataclass(frozen=True)
class ArticleHit:
    """One search result."""

    slug: str
    title: str
    url: str | None
    snippet: str  # plain text, at most SNIPPET_MAX characters, no markup
    score: float  # higher is better; comparable within one search only


def query_tokens(query: str) -> list[str]:
    """The distinct word tokens of a question, in order, stop words removed."""
    seen: dict[str, None] = {}
    for match in _TOKEN.finditer(fold_accents(query.lower())):
        token = match.group()
        if len(token) > MAX_TOKEN_LENGTH or token in STOP_WORDS:
            continue
        seen.setdefault(token, None)
        if len(seen) == MAX_TOKENS:
            break
    return list(seen)


def _as_prefix(tokens: Sequence[str]) -> bool:
    """Whether the last token also matches as a prefix (the person may still be typing it)."""
    return bool(tokens) and len(tokens[-1]) >= PREFIX_MIN and tokens[-1] not in STOP_WORD_PREFIXES


def fts5_query(tokens: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every token quoted, OR-ed; the last one also as a prefix."""
    terms = [f'"{token}"' for token in tokens]
    if _as_prefix(tokens):
        terms.append(f'"{tokens[-1]}"*')
    return " OR ".join(terms)


def pg_tsquery(tokens: Sequence[str]) -> str:
    """A `to_tsquery` text: every token a quoted lexeme, OR-ed; the last one also a prefix."""
    terms = [f"'{token}'" for token in tokens]
    if _as_prefix(tokens):
        terms.append(f"'{tokens[-1]}':*")
    return " | ".join(terms)


def clean_snippet(raw: str, limit: int = SNIPPET_MAX) -> str:
    """Whitespace collapsed; cut at a word to at most `limit` characters, with an ellipsis."""
    snippet = " ".join(raw.split())
    if len(snippet) <= limit:
        return snippet
    cut = snippet[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:·-—…") + "…"


# --- the index -----------------------------------------------------------------------------


def _sqlite_ddl() -> list[str]:
    columns = "title, body_text, keywords"
    new = "new.id, new.title, new.body_text, new.keywords"
    old = "old.id, old.title, old.body_text, old.keywords"
    delete = f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {columns}) VALUES ('delete', {old});"
    insert = f"INSERT INTO {FTS_TABLE}(rowid, {columns}) VALUES ({new});"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5({columns}, "
        "content='article', content_rowid='id', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER IF NOT EXISTS article_fts_ai AFTER INSERT ON article BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS article_fts_ad AFTER DELETE ON article BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS article_fts_au AFTER UPDATE ON article "
        f"BEGIN {delete} {insert} END",
    ]


# PostgreSQL's parser keeps an address, a link, a path or a version as one token
# ("helpdesk@example.com", "/var/log/mailflow.log", "2.0"), where SQLite's FTS5 and the
# question's words (`query_tokens`) split at every punctuation mark: the words inside would
# be found on SQLite only. ASCII punctuation is made a space before PostgreSQL parses the text,
# so it sees the words SQLite sees.
def _pg_words(column: str) -> str:
    spaced = f"regexp_replace(coalesce({column}, ''), '[[:punct:]]+', ' ', 'g')"
    unaccented = f"regexp_replace(normalize({spaced}, NFD), '[{_ACCENT_RANGES}]+', '', 'g')"
    return f"normalize({unaccented}, NFC)"


# Written on the column, and read back to tell a column made by an older version (its words
# parsed differently), which is made again.
PG_SEARCH_VERSION = "chatops search 3: punctuation is a space, accents folded"
_PG_DDL = [
    f"ALTER TABLE article DROP COLUMN IF EXISTS {PG_SEARCH_COLUMN}",
    f"ALTER TABLE article ADD COLUMN {PG_SEARCH_COLUMN} tsvector "
    "GENERATED ALWAYS AS ("
    f"setweight(to_tsvector('english', {_pg_words('title')}), 'A') || "
    f"setweight(to_tsvector('english', {_pg_words('keywords')}), 'B') || "
    f"setweight(to_tsvector('english', {_pg_words('body_text')}), 'B')) STORED",
    f"CREATE INDEX IF NOT EXISTS {PG_SEARCH_INDEX} ON article USING GIN ({PG_SEARCH_COLUMN})",
    f"COMMENT ON COLUMN article.{PG_SEARCH_COLUMN} IS '{PG_SEARCH_VERSION}'",
]


def _index_present(conn: Connection) -> bool:
    if conn.dialect.name == "sqlite":
        names = set(
            conn.execute(
                text("SELECT name FROM sqlite_master WHERE name IN (:t, :a, :b, :c)"),
                {"t": FTS_TABLE, "a": FTS_TRIGGERS[0], "b": FTS_TRIGGERS[1], "c": FTS_TRIGGERS[2]},
            ).scalars()
        )
        return names == {FTS_TABLE, *FTS_TRIGGERS}
    row = conn.execute(
        text(
            "SELECT to_regclass('article') IS NOT NULL AND to_regclass(:index) IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('article') "
            "AND attname = :column AND NOT attisdropped "
            "AND col_description(attrelid, attnum) = :version)"
        ),
        {"index": PG_SEARCH_INDEX, "column": PG_SEARCH_COLUMN, "version": PG_SEARCH_VERSION},
    ).scalar()
    return bool(row)


def ensure_search_index(engine: Engine) -> None:
    """Create the article table and its full-text index if missing (idempotent, concurrent-safe).

    A cheap read checks first, so calling this before every search costs one catalog query.
    On SQLite, when the FTS table or a trigger was missing (a new database, or the article
    table dropped and made again), the index is rebuilt from the table's rows.
    """
    with engine.connect() as conn:
        if _index_present(conn):
            return
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        if _index_present(conn):
            return
        Article.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
        if conn.dialect.name == "sqlite":
            for statement in _sqlite_ddl():
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        elif conn.dialect.name == "postgresql":
            for statement in _PG_DDL:
                conn.exec_driver_sql(statement)
        else:  # pragma: no cover - the project supports these two
            raise NotImplementedError(f"no full-text search for {conn.dialect.name}")


# --- searching -----------------------------------------------------------------------------

_SQLITE_SEARCH = text(
    f"""
    SELECT a.slug, a.title, a.url, a.body_text,
           -bm25({FTS_TABLE}, {", ".join(str(w) for w in BM25_WEIGHTS)}) AS score
    FROM {FTS_TABLE} JOIN article AS a ON a.id = {FTS_TABLE}.rowid
    WHERE {FTS_TABLE} MATCH :query
    ORDER BY score DESC, a.slug
    LIMIT :limit
    """
)

_PG_SEARCH = text(
    f"""
    WITH q AS (SELECT to_tsquery('english', :query) AS query)
    SELECT a.slug, a.title, a.url, a.body_text,
           ts_rank(a.{PG_SEARCH_COLUMN}, q.query, 1) AS score
    FROM article AS a, q
    WHERE a.{PG_SEARCH_COLUMN} @@ q.query
    ORDER BY score DESC, a.slug
    LIMIT :limit
    """
)


# A process that has seen the index trusts it for a while instead of asking the catalogue
# before every search (on PostgreSQL one more round trip per `/support`). A search that then
# fails because the index went away (tables dropped and made again) forgets it at once.
INDEX_RECHECK_SECONDS = 60.0
_index_seen: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _search_with_index(conn: Connection, tokens: list[str], limit: int) -> list[ArticleHit] | None:
    """The search on `conn`, or None when the index is missing there (nothing is created)."""
    pool = conn.engine.pool
    seen = _index_seen.get(pool)
    trusted = seen is not None and time.monotonic() - seen < INDEX_RECHECK_SECONDS
    if not trusted:
        if not _index_present(conn):
            return None
        _index_seen[pool] = time.monotonic()
    try:
        return _run(conn, tokens, limit)
    except DBAPIError:
        if not trusted:
            raise
        _index_seen.pop(pool, None)
        return None


def search_articles(
    session_or_engine: Session | Engine, query: str, limit: int = 3
) -> list[ArticleHit]:
    """The best `limit` articles for `query`, best first; [] for a query with no words.

    Never raises on user text. Takes a Session (the search runs in it) or an Engine. The
    first search of a database without the index creates it in a short transaction of its
    own, so on SQLite do not search from inside a write transaction (`transaction()`).
    """
    tokens = query_tokens(query or "")
    if not tokens or limit <= 0:
        return []
    if isinstance(session_or_engine, Session):
        # One connection for the search and the session's other reads: a request pays for
        # one checkout.
        hits = _search_with_index(session_or_engine.connection(), tokens, limit)
        if hits is not None:
            return hits
        # A failed statement ends a PostgreSQL transaction: start the session afresh.
        session_or_engine.rollback()
        engine = base_engine(session_or_engine.get_bind())
    else:
        engine = base_engine(session_or_engine)
        with engine.connect() as conn:
            hits = _search_with_index(conn, tokens, limit)
        if hits is not None:
            return hits
    ensure_search_index(engine)
    with engine.connect() as fresh:  # the session's snapshot may predate the index
        return _run(fresh, tokens, limit)


def _run(conn: Connection, tokens: list[str], limit: int) -> list[ArticleHit]:
    if conn.dialect.name == "postgresql":
        statement, query = _PG_SEARCH, pg_tsquery(tokens)
    else:
        statement, query = _SQLITE_SEARCH, fts5_query(tokens)
    rows = conn.execute(statement, {"query": query, "limit": limit}).all()
    return [
        ArticleHit(
            slug=row.slug,
            title=row.title,
            url=row.url,
            snippet=make_snippet(row.body_text or "", tokens),
            score=float(row.score),
        )
        for row in rows
    ]


# --- snippets ------------------------------------------------------------------------------

_stemmer = snowballstemmer.stemmer("english")
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer keeps its working state on itself
_SPACE = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")
_WORD_CHAR = re.compile(r"\w").match  # what `\b` counts as part of a word
_WORD_REST = re.compile(r"\w*")


@functools.lru_cache(maxsize=8192)
def _stem(token: str) -> str:
    """What a word must start with to match `token`: its English stem, cut to the part the
    stem shares with the token (Snowball makes "policy" "polici": words match on "polic")."""
    with _STEMMER_LOCK:
        stem = str(_stemmer.stemWord(token))
    shared = next(
        (i for i, (a, b) in enumerate(zip(token, stem, strict=False)) if a != b),
        min(len(token), len(stem)),
    )
    return stem[:shared]


def _stem_matches(body_text: str, stems: set[str]) -> list[tuple[int, int, str]]:
    """(start, end, stem) of every word of the body that starts with one of the stems, in
    order; `end` is where the word ends. A stem shorter than PREFIX_MIN ("t" of "isn't")
    matches whole words only. Where two stems match one word ("mail", "mailbox"), the
    longer."""
    lowered = body_text.lower()
    if len(lowered) != len(body_text):  # lower-casing moved the offsets (a dotted capital I)
        lowered = "".join(char.lower()[0] for char in body_text)
    if not lowered.isascii():  # the question's words lost their accents (`query_tokens`)
        lowered = "".join(map(_fold_char, lowered))
    found: dict[int, tuple[int, int, str]] = {}
    # str.find scans in C: a third of the time of one regular expression over the stems.
    for stem in sorted(stems, key=len, reverse=True):
        at = lowered.find(stem)
        while at >= 0:
            if (not at or not _WORD_CHAR(lowered[at - 1])) and at not in found:
                end = _WORD_REST.match(lowered, at + len(stem)).end()  # type: ignore[union-attr]
                if len(stem) >= PREFIX_MIN or end == at + len(stem):
                    found[at] = (at, end, stem)
            at = lowered.find(stem, at + len(stem))
    return sorted(found.values())


def make_snippet(body_text: str, tokens: Sequence[str], limit: int = SNIPPET_MAX) -> str:
    """The stretch of `body_text`, at most `limit` characters, that shows the most distinct
    query words (then the most matching words, then the earliest), starting a few words
    before its first match; "…" where the body goes on before or after it; cut at words,
    whitespace collapsed. A word matches a token when it starts with the token's English
    stem, ignoring case and accents (`_stem`, `fold_accents`). No match (an article found by
    its title or tags): the body's start."""
    if limit < 2:
        return ""
    stems = {_stem(fold_accents(token.lower())) for token in tokens}
    found = _stem_matches(body_text, {stem for stem in stems if stem})
    lead = min(SNIPPET_LEAD, limit // 4)
    room = limit - 2  # the text between the two ellipses
    # Each match in turn opens a window `lead` characters before it; the matches that fit
    # in it whole are counted with two pointers (the windows only move forward), so a long
    # article costs one pass.
    best_start, best_score = 0, (0, 0)
    inside: dict[str, int] = {}  # stem: matching words in the window
    low = high = 0  # the window's matches: found[low:high]
    count = len(found)
    for offset, _end, _stem_found in found:
        start = offset - lead if offset > lead else 0
        while low < count and found[low][0] < start:
            if low < high:
                stem = found[low][2]
                inside[stem] -= 1
                if not inside[stem]:
                    del inside[stem]
            low += 1
        if high < low:
            high = low
        while high < count and found[high][1] <= start + room:
            stem = found[high][2]
            inside[stem] = inside.get(stem, 0) + 1
            high += 1
        score = (len(inside), high - low)
        if score > best_score:
            best_start, best_score = start, score
    first = best_start
    if first > 0:  # begin at a word: after a space in the lead, else at the match itself
        match_at = next((m[0] for m in found if m[0] >= first), first)
        space = _SPACE.search(body_text, first, match_at)
        first = space.end() if space else match_at
    # Enough of the body to fill `limit` once whitespace is collapsed: doubled until it does.
    end = first + 2 * limit
    while True:
        shown = " ".join(body_text[first:end].split())
        if len(shown) > limit or end >= len(body_text):
            break
        end = first + 2 * (end - first)
    cut_before = _NON_SPACE.search(body_text, 0, first) is not None
    return clean_snippet(("…" if cut_before and shown else "") + shown, limit)
