"""health tables (see the module docs)."""
