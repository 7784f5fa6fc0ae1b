"""A home's SQLite index files (content index, lineage index): open, check, transact, close.

Both are caches of what the ledger says, one SQLite file each in WAL mode,
with a ``meta`` table naming their schema and version. :class:`SQLiteIndex`
opens such a file (creating its tables), refuses a file of another schema
or version with a :class:`~prov_core.errors.ConfigError` naming it (an index
that can be rebuilt from the ledger, ``rebuildable``, is instead emptied and
recreated at the new version, in one transaction), and runs transactions
whose ``sqlite3`` errors become :class:`~prov_core.errors.LedgerError`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

from prov_core.errors import ConfigError, LedgerError

__all__ = ["SQLiteIndex"]


class SQLiteIndex:
    """SQLiteIndex is the file handling both index classes share (module docstring)."""

    what: ClassVar[str] = "index"  # "content index", "lineage index": named in errors
    schema: ClassVar[str] = ""
    version: ClassVar[int] = 1
    tables: ClassVar[Sequence[str]] = ()
    pragmas: ClassVar[Sequence[str]] = ()
    stale_hint: ClassVar[str] = ""  # what to do about a file of another version
    #: A cache built wholly from the ledger: a file of an older version of the same
    #: schema is emptied and recreated (its next catch-up re-reads the ledger).
    rebuildable: ClassVar[bool] = False

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the {self.what} {self.path}: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            for pragma in self.pragmas:
                conn.execute(pragma)
            with self._tx():
                for ddl in self.tables:
                    conn.execute(ddl)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?), ('version', ?)",
                    (self.schema, str(self.version)),
                )
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if self._outdated(meta):
                self._recreate()
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except (sqlite3.Error, LedgerError) as exc:
            conn.close()
            self._conn = None
            raise ConfigError(f"{self.path} is not a usable provgate {self.what}: {exc}") from exc
        if meta.get("schema") != self.schema or meta.get("version") != str(self.version):
            self.close()
            raise ConfigError(
                f"{self.path} is not a provgate {self.what} of version {self.version} "
                f"(meta {meta}){self.stale_hint}"
            )

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
        with self._tx() as conn:
            current = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if current is not None and current[0] == str(self.version):
                return  # another process recreated it while this one waited
            names = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for name in names:
                conn.execute(f'DROP TABLE "{name}"')
            for ddl in self.tables:
                conn.execute(ddl)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?), ('version', ?)",
                (self.schema, str(self.version)),
            )

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """_tx runs one transaction (BEGIN IMMEDIATE when writing); errors become LedgerError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LedgerError(f"{self.what} {self.path} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.what} {self.path}: {exc}") from exc

    def close(self) -> None:
        """close releases the database; the index may be reopened."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
