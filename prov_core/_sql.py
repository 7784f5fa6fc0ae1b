"""One SQL text for two databases: the home's indexes and the store's metadata.

The content index, the lineage index and the embedded store's refs, commits and
staging area are written once, in SQLite's SQL, and run on SQLite (the
embedded default, one file each) or on PostgreSQL (one database shared by
many workers on many machines, :mod:`prov_core._postgres`). The queries call
a :class:`Dialect` for the few things the two spell differently, and run in a
:class:`Database` transaction; everything else is text both accept:

- upserts are ``INSERT ... ON CONFLICT (key) DO NOTHING`` or ``DO UPDATE SET
  col = excluded.col`` (SQLite 3.24+), never ``INSERT OR IGNORE/REPLACE``;
- a list of integers joined as a table is :meth:`Dialect.ints` (SQLite's
  ``json_each``, PostgreSQL's ``unnest``), with :meth:`Dialect.ints_param`;
- a GLOB filter is :meth:`Dialect.glob` with :meth:`Dialect.glob_param`;
- rows a write transaction must hold until it commits are read with
  :attr:`Dialect.for_update` / :attr:`Dialect.for_share`: empty on SQLite,
  whose ``BEGIN IMMEDIATE`` already holds the database's one write lock;
- placeholders (``?``, ``:name``), column types, ``WITHOUT ROWID`` and the
  prefix of each table name are rewritten for PostgreSQL as a whole
  statement, by :meth:`Dialect.sql` (see :class:`prov_core._postgres.PostgresDialect`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

__all__ = ["SQLITE", "Database", "Dialect", "Rows", "SQLiteDatabase", "Tx", "is_sqlite_busy"]


class Rows(Protocol):
    """Rows is what a statement returns: a DB-API cursor of either driver."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Dialect:
    """Dialect is SQLite's spelling of what differs; PostgresDialect overrides it."""

    name: ClassVar[str] = "sqlite"
    for_update: ClassVar[str] = ""
    """for_update locks the rows a SELECT reads until the transaction ends (PostgreSQL)."""
    for_share: ClassVar[str] = ""
    """for_share keeps the rows a SELECT reads from changing until the transaction ends."""

    def sql(self, text: str) -> str:
        """sql returns ``text`` (SQLite's SQL) as this database's statement."""
        return text

    def ints(self, alias: str) -> str:
        """ints is a table of one column ``value``: the integers of one parameter."""
        return f"json_each(?) AS {alias}"

    def ints_param(self, values: Iterable[int]) -> Any:
        """ints_param is the parameter :meth:`ints` reads."""
        return json.dumps(list(values))

    def glob(self, column: str) -> str:
        """glob is the condition ``column`` matches the GLOB pattern of one parameter."""
        return f"{column} GLOB ?"

    def glob_param(self, pattern: str) -> str:
        """glob_param is the parameter :meth:`glob` reads, from a SQLite GLOB pattern."""
        return pattern

    def text(self, value: str | None) -> str | None:
        """text is ``value`` as this database can store it in a TEXT column."""
        return value


SQLITE = Dialect()
"""SQLITE is the dialect of SQLite."""


class Tx:
    """Tx runs statements of one open transaction, in the database's dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Rows:
        """execute runs one statement written in SQLite's SQL."""
        rows: Rows = self._conn.execute(self.dialect.sql(sql), params)
        return rows

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """executemany runs one statement once per parameter row."""
        self._conn.cursor().executemany(self.dialect.sql(sql), params)


class Database:
    """Database is one connection, its dialect and its transactions (thread-safe).

    ``where`` names it in messages (a path, or a URL without its password);
    ``errors`` are the driver's exceptions a caller maps to its own.
    """

    dialect: Dialect = SQLITE
    where: str = ""
    errors: tuple[type[Exception], ...] = ()

    def transaction(
        self, *, write: bool, durable: bool = False
    ) -> contextlib.AbstractContextManager[Tx]:
        """transaction runs one transaction; it commits when the block ends, else rolls back.

        A read transaction sees one consistent snapshot. ``durable`` asks that
        the commit be on disk before it returns, whatever the connection's default.
        """
        raise NotImplementedError

    def is_busy(self, exc: BaseException) -> bool:
        """is_busy tells whether ``exc`` means another writer held a lock too long."""
        raise NotImplementedError

    def message(self, exc: BaseException) -> str:
        """message is the text of a driver error, safe to show (no password)."""
        return str(exc)

    def close(self) -> None:
        """close releases the connection."""
        raise NotImplementedError


_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def is_sqlite_busy(exc: BaseException) -> bool:
    """is_sqlite_busy tells whether a sqlite3 error means another writer held a lock too long."""
    return getattr(exc, "sqlite_errorname", "") in _BUSY


class SQLiteDatabase(Database):
    """SQLiteDatabase runs transactions on one open SQLite connection (WAL).

    A write transaction is ``BEGIN IMMEDIATE``: it takes the database's one
    write lock before reading, so writers of any process serialize.
    ``durable`` raises ``synchronous`` to FULL for that commit.
    """

    errors = (sqlite3.Error,)

    def __init__(self, conn: sqlite3.Connection, path: Path, *, fsync: bool = True) -> None:
        self.conn: sqlite3.Connection | None = conn
        self.where = str(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self, *, write: bool, durable: bool = False) -> Iterator[Tx]:
        with self._lock:
            conn = self.conn
            if conn is None:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            durable = durable and self.fsync
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Tx(conn, SQLITE)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")

    def is_busy(self, exc: BaseException) -> bool:
        return is_sqlite_busy(exc)

    def close(self) -> None:
        with self._lock:
            conn, self.conn = self.conn, None
            if conn is not None:
                conn.close()
