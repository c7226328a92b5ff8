"""Catalogs: the schema of catalog.toml, the builders generated from it, the
registry of every dataset, proposals for new entries, and the catalog site."""
