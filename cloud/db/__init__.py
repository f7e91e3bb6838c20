"""The hub's database: tables, migrations and queries, for SQLite and PostgreSQL alike."""
