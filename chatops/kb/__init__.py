"""The knowledge base: help articles from markdown files and their full-text search
(SC-6 self-help, SC-25 open to everyone)."""

from chatops.kb.loader import LoadSummary, load_articles
from chatops.kb.search import ArticleHit, ensure_search_index, search_articles

__all__ = ["ArticleHit", "LoadSummary", "ensure_search_index", "load_articles", "search_articles"]
