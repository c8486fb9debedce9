"""article tables (see the module docs)."""
