"""The store's one error class."""

from __future__ import annotations


class StoreError(Exception):
    """The state database cannot be used: missing, not SQLite, newer than this code, or its migrations are out of
    sequence. The message names the file and what to do."""
