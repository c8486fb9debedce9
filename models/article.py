"""The knowledge base: help articles loaded from markdown files (SC-6, SC-25).

`chatops load-articles DIR` fills this table (see `chatops.kb.loader`); the directory is the
source of truth. The full-text index is not declared here because it differs per database
and SQLModel's `create_all` would not know it: `chatops.kb.search.ensure_search_index`
creates it idempotently next to the table — an FTS5 virtual table over `title`, `body_text`
and `keywords` kept in sync by triggers on SQLite, a generated `tsvector` column `search` with
a GIN index on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Article(SQLModel, table=True):
    """One help article: a markdown file of the knowledge-base directory."""

    id: int | None = Field(default=None, primary_key=True)
    # The file name without `.md`: stable across reloads, used in links and buttons.
    slug: str = Field(index=True, unique=True, max_length=100)
    title: str = Field(max_length=200)
    # The markdown as written (front matter and a heading used as the title removed).
    body: str = Field(sa_column=Column(Text, nullable=False))
    # Derived by the loader for the index: the body as plain text (what snippets quote) and
    # the tags and services as words.
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    keywords: str = Field(default="", sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str | None = Field(default=None, max_length=500)
    # When this article's content last changed in the knowledge base (the load that did it).
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # sha256 of everything stored from the file: a reload of an unchanged file writes nothing.
    content_hash: str = Field(max_length=64)
