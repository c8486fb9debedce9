"""Loading the knowledge base from a directory of markdown files.

`load_articles(engine, directory)` reads every `*.md` file directly in the directory (not
sub-directories; names starting with `.` are skipped). Each file is one article:

```markdown
---
title: Forward mail to another address      # optional: else the first `# heading`
tags: [mail, forwarding]                    # optional: words that help the search
services: [mail]                            # optional: the services it is about
url: https://support.example.com/forwarding # optional: a fuller page to link to
---
# Forward mail to another address
Text in markdown…
```

The slug is the file name without `.md` (lower-case letters, digits, `-` and `_`). Without a
`title` in the front matter, the first level-1 heading is the title and is taken out of the
body. HTML comments (`<!-- … -->`) are notes for the writers: never shown nor searched.
Every file is validated before anything is written — bad front matter, a missing title,
an empty body, a bad name: FileError naming the file and the line, and nothing is loaded.
Then everything is upserted in one transaction.

**The directory is the source of truth**: an article whose file is no longer there is removed
(cases do not refer to articles). A directory with no `.md` files at all is refused rather
than emptying the knowledge base because of a wrong path. Loading the same directory twice
changes nothing: each article stores a hash of its content and is written only when that
changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from chatops.db import transaction
from chatops.kb.search import ensure_search_index
from chatops.yamlfile import FileError, explain, parse_with_lines
from models.article import Article

# Bump when the derived columns (body_text, keywords) are computed differently, so the next
# load rewrites every article even though the files did not change.
# 2: HTML comments left out; 3: backslashes kept; 4: other scripts' full stops kept alone.
DERIVATION_VERSION = 4
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_H1 = re.compile(r"^\s{0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_PG_LOCK = 7_311_002  # pg_advisory_xact_lock key: one load at a time


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] = []
    services: list[str] = []
    url: str | None = Field(default=None, max_length=500)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the title is empty")
        return value.strip() if value is not None else None

    @field_validator("tags", "services")
    @classmethod
    def _words(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            value = str(value).strip()
            if not value or len(value) > 60:
                raise ValueError(f"{value!r}: give words of 1 to 60 characters")
            cleaned.append(value)
        return cleaned

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s<>|]+$", value):
            raise ValueError("must be an http:// or https:// address without spaces")
        return value


@dataclass(frozen=True)
class ParsedArticle:
    """One validated file, ready to store."""

    slug: str
    title: str
    body: str
    body_text: str
    keywords: str
    tags: list[str]
    services: list[str]
    url: str | None
    content_hash: str


@dataclass(frozen=True)
class LoadSummary:
    """What a load changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def __str__(self) -> str:
        total = self.added + self.updated + self.unchanged
        if not self.changed:
            return f"already up to date, nothing changed ({total} articles)."
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed ({total} articles)."
        )


def load_articles(
    engine: Engine, directory: str | Path, now: Callable[[], datetime] | None = None
) -> LoadSummary:
    """Validate every article file, then make the knowledge base equal to the directory."""
    articles = read_articles(directory)
    ensure_search_index(engine)
    stamp = (now or (lambda: datetime.now(UTC)))()
    with transaction(engine) as session:
        return _sync(session, articles, stamp)


def read_articles(directory: str | Path) -> list[ParsedArticle]:
    """Parse and validate every `*.md` file of the directory; FileError on any problem."""
    folder = Path(directory)
    if not folder.is_dir():
        raise FileError(str(folder), ["not a directory (or it cannot be read)"])
    files = sorted(p for p in folder.glob("*.md") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileError(
            str(folder),
            [
                "no *.md files here; refusing to remove every article (the directory is the "
                "source of truth, and a wrong path would empty the knowledge base)"
            ],
        )
    parsed: list[ParsedArticle] = []
    errors: list[FileError] = []
    for path in files:
        try:
            parsed.append(parse_article(path))
        except FileError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problems = [f"{Path(e.path).name}: {p}" for e in errors for p in e.problems]
        raise FileError(str(folder), problems)
    return parsed


def parse_article(path: Path) -> ParsedArticle:
    """One file: front matter, title, body; FileError naming the file and the line."""
    name = str(path)
    slug = path.name[: -len(".md")]
    if not _SLUG.match(slug):
        raise FileError(
            name,
            [
                f"the file name {path.name!r} must be a slug: lower-case letters, digits, "
                "'-' and '_', at most 100 characters, then .md"
            ],
        )
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FileError(name, [exc.strerror or str(exc)]) from None
    except UnicodeDecodeError as exc:
        raise FileError(name, [f"not UTF-8 text (byte {exc.start})"]) from None
    return parse_article_text(raw.replace("\r\n", "\n").replace("\r", "\n"), slug, name)


def parse_article_text(content: str, slug: str, name: str) -> ParsedArticle:
    lines = content.split("\n")
    front = FrontMatter()
    where: dict[tuple[str | int, ...], int] = {}  # YAML value → its line
    body_start = 0  # index of the first body line
    if lines and lines[0].rstrip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
        if end is None:
            raise FileError(name, ["line 1: the front matter opened with --- is never closed"])
        # Blank lines in place of the opening --- keep YAML's line numbers equal to the file's.
        data, where = parse_with_lines("\n" + "\n".join(lines[1:end]), name)
        if data is None:
            data = {}
        try:
            front = FrontMatter.model_validate(data)
        except ValidationError as exc:
            raise explain(exc, where, name) from None
        body_start = end + 1
    body_lines = lines[body_start:]
    title = front.title
    if title is not None:
        # Shown in bold or as a link's text: markdown or a line break would show as stray
        # asterisks and break the list of articles.
        title = inline_plain(title)
        if not title or len(title) > 200:
            line = where.get(("title",), 1)
            raise FileError(name, [f"line {line}: the title must be 1 to 200 characters"])
    else:
        heading = _first_heading(body_lines)
        if heading is None:
            raise FileError(
                name,
                [
                    f"line {body_start + 1}: no title: give `title:` in the front matter or "
                    "start the text with a `# heading`"
                ],
            )
        index, title = heading
        title = inline_plain(title)
        if not title or len(title) > 200:
            raise FileError(
                name, [f"line {body_start + index + 1}: the title must be 1 to 200 characters"]
            )
        del body_lines[index]
    body = "\n".join(body_lines).strip("\n")
    if not body.strip():
        raise FileError(name, [f"line {len(lines)}: the article has no text below its title"])
    body = body.rstrip() + "\n"
    body_text = markdown_to_text(body)
    if not body_text.strip():
        raise FileError(
            name,
            [
                f"line {len(lines)}: the article has no text below its title "
                "(comments are not shown)"
            ],
        )
    keywords = " ".join([*front.tags, *front.services])
    digest = hashlib.sha256(
        json.dumps(
            [DERIVATION_VERSION, title, body, front.tags, front.services, front.url],
            ensure_ascii=False,
        ).encode()
    ).hexdigest()
    return ParsedArticle(
        slug=slug,
        title=title,
        body=body,
        body_text=body_text,
        keywords=keywords,
        tags=list(front.tags),
        services=list(front.services),
        url=front.url,
        content_hash=digest,
    )


def _first_heading(lines: list[str]) -> tuple[int, str] | None:
    """The first level-1 ATX heading outside code fences and HTML comments: (line index,
    text)."""
    for index, line, fenced in _visible_lines(lines):
        if not fenced and (match := _H1.match(line)):
            return index, match.group(1).strip()
    return None


def _visible_lines(lines: list[str]) -> Iterator[tuple[int, str, bool]]:
    """(index, line, inside a code fence) for every line, with HTML comments taken out of
    the lines outside code fences; a fence line comes out blank (it ends a paragraph).

    A comment (`<!-- … -->`, over any number of lines) is a note to the article's writers:
    it is never shown in a snippet nor searched, and a `# heading` inside one is not the
    title. A line that held only a comment comes out blank, which ends a paragraph as the
    comment does in markdown.
    """
    fenced = in_comment = False
    for index, line in enumerate(lines):
        if not fenced and (in_comment or "<!--" in line):
            line, in_comment = _without_comments(line, in_comment)
            if in_comment or not line.strip():
                yield index, "", False
                continue
        if _FENCE.match(line):
            fenced = not fenced
            yield index, "", False
            continue
        yield index, line, fenced


def _without_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without its HTML comments, and whether a comment is still open at its end."""
    kept: list[str] = []
    at = 0
    while True:
        if in_comment:
            end = line.find("-->", at)
            if end < 0:
                return "".join(kept), True
            at, in_comment = end + 3, False
        else:
            start = line.find("<!--", at)
            if start < 0:
                kept.append(line[at:])
                return "".join(kept), False
            kept.append(line[at:start])
            at, in_comment = start + 4, True


# --- markdown to plain text ----------------------------------------------------------------

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+|mailto:[^>\s]+)>")
_HTML = re.compile(r"</?[A-Za-z][^>]*>")
_CODE = re.compile(r"`+([^`]*)`+")
_EMPHASIS = re.compile(r"(?<![\w*])(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_STRIKE = re.compile(r"~~(.+?)~~")
_BLOCK_PREFIX = re.compile(r"^\s{0,3}(?:>\s?)*(?:#{1,6}\s+|[-*+]\s+(?:\[[ xX]\]\s+)?|\d+[.)]\s+)?")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s")
# What already ends a sentence, in Latin and in other scripts (Chinese and Japanese full-width
# marks, Arabic and Devanagari ones): a line ending so gets no "." of its own.
_SENTENCE_END = frozenset(".!?:;…)\"'" + "。．｡！？；：）」』】》〉”’" + "؟۔।॥")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# Markdown's backslash escapes: a backslash before ASCII punctuation. Before anything else
# (a letter, as in `C:\Users` or a registry key) it is a backslash the reader must see.
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# While the other rules run, an escaped character stands in the private use area, where no
# rule mistakes it for markup (`\*not\*` is not emphasis).
_HIDDEN = 0xE000
_UNHIDE = {_HIDDEN + code: chr(code) for code in range(0x21, 0x7F)}


def inline_plain(markdown: str) -> str:
    """One line of markdown as plain text: links, emphasis, code and tags reduced to text."""
    out = _ESCAPED.sub(lambda m: chr(_HIDDEN + ord(m.group(1))), markdown)
    out = out.rstrip().removesuffix("\\")  # a hard line break
    out = _IMAGE.sub(r"\1", out)
    out = _LINK.sub(r"\1", out)
    out = _REF_LINK.sub(r"\1", out)
    out = _AUTOLINK.sub(r"\1", out)
    out = _CODE.sub(r"\1", out)
    out = _HTML.sub("", out)
    for _ in range(2):  # nested emphasis (**bold _italic_**)
        out = _EMPHASIS.sub(r"\2", out)
    out = _STRIKE.sub(r"\1", out).translate(_UNHIDE)
    return " ".join(out.split())


def markdown_to_text(markdown: str) -> str:
    """The body as plain text, one line per paragraph, heading, list item or table row.

    Each line ends with punctuation (a full stop is added to headings and list items that
    have none), so snippets that run across lines still read as sentences.
    """
    blocks: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(" ".join(paragraph))
            paragraph.clear()

    for _index, line, fenced in _visible_lines(markdown.split("\n")):
        if fenced:
            if line.strip():
                blocks.append(line.strip())
            continue
        if not line.strip() or _RULE.match(line) or _REF_DEF.match(line):
            flush()
            continue
        if _TABLE_SEP.match(line):
            continue
        prefix = _BLOCK_PREFIX.match(line)
        starts_block = bool(prefix and prefix.group().strip()) or "|" in line.strip()[:1]
        content = line[prefix.end() :] if prefix else line
        if "|" in content and line.strip().startswith("|"):
            content = " · ".join(c.strip() for c in content.strip().strip("|").split("|"))
        if starts_block:
            flush()
        paragraph.append(inline_plain(content))
        if starts_block and prefix and "#" in prefix.group():
            flush()  # a heading is a block of its own
    flush()
    sentences = []
    for block in blocks:
        block = block.strip()
        if not block:
            continue
        if block[-1] not in _SENTENCE_END:
            block += "."
        sentences.append(block)
    return "\n".join(sentences)


# --- storing -------------------------------------------------------------------------------


def _sync(session: Session, articles: list[ParsedArticle], stamp: datetime) -> LoadSummary:
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    existing = {a.slug: a for a in session.exec(select(Article)).all()}
    added = updated = unchanged = removed = 0
    wanted = {a.slug for a in articles}
    for slug, row in existing.items():
        if slug not in wanted:
            session.delete(row)
            removed += 1
    session.flush()
    for article in articles:
        values = {
            "title": article.title,
            "body": article.body,
            "body_text": article.body_text,
            "keywords": article.keywords,
            "tags": article.tags,
            "services": article.services,
            "url": article.url,
            "content_hash": article.content_hash,
        }
        row = existing.get(article.slug)
        if row is None:
            session.add(Article(slug=article.slug, updated_at=stamp, **values))
            added += 1
        elif row.content_hash != article.content_hash:
            for field, value in values.items():
                setattr(row, field, value)
            row.updated_at = stamp
            updated += 1
        else:
            unchanged += 1
    return LoadSummary(added=added, updated=updated, unchanged=unchanged, removed=removed)
