"""The one error the database layer raises for a database it cannot use."""

from __future__ import annotations


class DatabaseError(Exception):
    """The database cannot be used (bad URL, unreachable, newer schema); the message says why."""
