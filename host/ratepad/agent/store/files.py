"""The store's file: owner-only modes, and connections to it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreError

__all__ = ["connect", "create_owner_only", "narrow_to_owner", "reader"]


def create_owner_only(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 if it does not exist yet.

    SQLite creates the ``-wal`` and ``-shm`` files with the mode of the database file
    (``robust_open`` and ``findCreateFileMode`` in SQLite's os_unix.c), so they are owner-only
    as well."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def narrow_to_owner(path: Path) -> None:
    """A store (and its -wal, -shm) created before modes were kept owner-only: narrow it."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            st = p.stat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)


def connect(path: Path, read_only: bool = False, busy_ms: int = 5000) -> sqlite3.Connection:
    if read_only:
        uri = path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    return conn


@contextlib.contextmanager
def reader(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection of its own: WAL lets it read while the writer writes, and it
    never holds the writer's lock."""
    try:
        conn = connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from None
    try:
        yield conn
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from None
    finally:
        conn.close()
