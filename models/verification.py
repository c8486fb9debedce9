"""verification tables (see the module docs)."""
