"""What goes wrong with a store, and where the line is between a bad item and a bad store."""

from __future__ import annotations

import sqlite3

from ...errors import InputError, RatepadError

__all__ = ["ROW_ERRORS", "BadStoreError", "StoreError", "StoreRowError"]


class StoreError(RatepadError):
    """The store cannot be opened or written (bad file, newer schema, disk error)."""


class BadStoreError(StoreError, InputError):
    """The file is not a store this ratepad can use: not SQLite, not a ratepad store, a newer
    schema, not writable, not there (the CLI exits 2)."""


class StoreRowError(StoreError):
    """One item of a batch could not be written (the database refused its values); ``index``
    says which. Nothing of the batch is stored."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


# Errors that come from an item's values rather than from the database file or the disk: the
# same item fails again, the others of its batch would not.
ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
    ValueError,
    TypeError,
    AttributeError,
    UnicodeError,
)
