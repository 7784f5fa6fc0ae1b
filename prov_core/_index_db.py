"""A home's index databases (content index, lineage index): open, check, transact, close.

Both are caches of what the ledger says, with a ``meta`` table naming their
schema. :class:`IndexDatabase` opens one at a *location*:

- a path: one SQLite file in WAL mode (the embedded default), whose tables it
  creates. A file of another schema or version is refused with a
  :class:`~prov_core.errors.ConfigError` naming it; an index that can be
  rebuilt from the ledger (``rebuildable``) is instead emptied and recreated
  at the new version, in one transaction;
- a ``postgresql://`` URL: the component's prefixed tables in that database
  (:mod:`prov_core._postgres`), brought to the newest version by the
  ``migrations`` steps, written in the same SQL as the SQLite tables.

Transactions run the same statements on either (:mod:`prov_core._sql`);
driver errors become :class:`~prov_core.errors.LedgerError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

from prov_core._sql import Database, SQLiteDatabase, Tx
from prov_core.errors import ConfigError, LedgerError

__all__ = ["IndexDatabase"]


class IndexDatabase:
    """IndexDatabase is the storage both index classes share (module docstring)."""

    what: ClassVar[str] = "index"  # "content index", "lineage index": named in errors
    schema: ClassVar[str] = ""
    version: ClassVar[int] = 1
    tables: ClassVar[Sequence[str]] = ()
    """tables is the SQLite schema (``CREATE ... IF NOT EXISTS``), current version."""
    migrations: ClassVar[Sequence[Sequence[str]]] = ()
    """migrations are the PostgreSQL schema's steps: ``migrations[v - 1]`` makes version v."""
    prefix: ClassVar[str] = ""
    """prefix starts the names of this index's tables in a PostgreSQL database."""
    pragmas: ClassVar[Sequence[str]] = ()
    stale_hint: ClassVar[str] = ""  # what to do about a file of another version
    #: A cache built wholly from the ledger: a file of an older version of the same
    #: schema is emptied and recreated (its next catch-up re-reads the ledger).
    rebuildable: ClassVar[bool] = False

    def __init__(self, location: str | Path, *, busy_timeout: float = 30.0) -> None:
        """__init__ opens the index at a path (SQLite) or a ``postgresql://`` URL."""
        from prov_core._pg_session import is_postgres_url

        self._db: Database | None = None
        if is_postgres_url(location):
            from prov_core._postgres import open_database

            self.path: Path | None = None
            self._db = open_database(
                str(location),
                prefix=self.prefix,
                migrations=self.migrations,
                schema=self.schema,
                what=self.what,
                error=LedgerError,
                lock_timeout=busy_timeout,
            )
            self.where = self._db.where
        else:
            self.path = Path(location)
            self.where = str(self.path)
            self._db = self._open_sqlite(self.path, busy_timeout)

    # -- SQLite ---------------------------------------------------------------

    def _open_sqlite(self, path: Path, busy_timeout: float) -> Database:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the {self.what} {path}: {exc}") from exc
        db = SQLiteDatabase(conn, path)
        self._db = db
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            for pragma in self.pragmas:
                conn.execute(pragma)
            with self._tx() as tx:
                for ddl in self.tables:
                    tx.execute(ddl)
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?), ('version', ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    (self.schema, str(self.version)),
                )
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if self._outdated(meta):
                self._recreate()
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except (sqlite3.Error, LedgerError) as exc:
            db.close()
            raise ConfigError(f"{path} is not a usable provgate {self.what}: {exc}") from exc
        if meta.get("schema") != self.schema or meta.get("version") != str(self.version):
            db.close()
            raise ConfigError(
                f"{path} is not a provgate {self.what} of version {self.version} "
                f"(meta {meta}){self.stale_hint}"
            )
        return db

    def _outdated(self, meta: dict[str, str]) -> bool:
        """_outdated: a rebuildable index of this schema at an older version."""
        version = meta.get("version", "")
        return (
            self.rebuildable
            and meta.get("schema") == self.schema
            and version.isdigit()
            and int(version) < self.version
        )

    def _recreate(self) -> None:
        """_recreate drops every table and creates this version's, in one transaction."""
        with self._tx() as tx:
            current = tx.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if current is not None and current[0] == str(self.version):
                return  # another process recreated it while this one waited
            names = [
                str(r[0])
                for r in tx.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for name in names:
                tx.execute(f'DROP TABLE "{name}"')
            for ddl in self.tables:
                tx.execute(ddl)
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?), ('version', ?)",
                (self.schema, str(self.version)),
            )

    # -- catching up with the ledger -------------------------------------------

    @staticmethod
    def _take_turn(tx: Tx) -> None:
        """_take_turn makes the catch-ups of many processes run one batch at a time.

        On PostgreSQL it locks the ``schema`` row of ``meta`` until the
        transaction ends; on SQLite the write transaction's ``BEGIN IMMEDIATE``
        already holds the file's write lock. Each batch then starts where the
        last committed one stopped.
        """
        if tx.dialect.for_update:
            tx.execute(f"SELECT value FROM meta WHERE key = 'schema'{tx.dialect.for_update}")

    @staticmethod
    def _meta_int(tx: Tx, key: str) -> int:
        """_meta_int is the integer stored under ``key`` in ``meta`` (0 when absent)."""
        row = tx.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _set_meta(tx: Tx, key: str, value: str) -> None:
        """_set_meta stores ``value`` under ``key`` in ``meta``."""
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- both -----------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Tx]:
        """_tx runs one transaction; driver errors become LedgerError."""
        db = self._db
        if db is None:
            raise LedgerError(f"{self.what} {self.where} is closed")
        try:
            with db.transaction(write=write) as tx:
                yield tx
        except db.errors as exc:
            raise LedgerError(f"{self.what} {db.where}: {db.message(exc)}") from exc

    def close(self) -> None:
        """close releases the database; the index may be reopened."""
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
