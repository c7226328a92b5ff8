"""Catalogs, each module importing only those before it: entries (the parsed
form), paths (allowed roots), schema (what an entry may say), loader (catalog
files, the project's catalog), generated (a builder class per entry), teams
(the team catalogs registered), registry (every dataset, what is built where),
proposal (`new`) and page (the catalog site)."""
