"""The embedded ledger: one SQLite file in WAL mode.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)          -- schema, version, origin
    entries(idx INTEGER PRIMARY KEY, leaf BLOB)     -- the log, 0-based
    subtrees(level, n, hash BLOB, PRIMARY KEY (level, n))  -- every complete subtree
    checkpoints(size INTEGER PRIMARY KEY, note BLOB)       -- one signed note per head

Concurrency: every append is one ``BEGIN IMMEDIATE`` transaction, which
takes SQLite's single write lock before reading anything, so the size it
reads is the committed head and no other writer (thread or process) can
append until it commits. Indices are therefore gap-free, unique and ordered,
and entries, subtrees and the checkpoint of the new head commit together or
not at all. Waiting writers retry for ``busy_timeout`` seconds. Readers never
block writers (WAL). The right edge of the tree is cached per connection
and checked against the stored size inside each write transaction; when
another process has appended, it is reloaded (O(log n) rows).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from prov_core.errors import ConfigError, InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger.base import Appended, BaseLedger, check_leaves
from prov_core.ledger.checkpoint import Checkpoint, NoteSigner, checkpoint_body
from prov_core.ledger.merkle import Frontier, leaf_hash

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "SQLiteLedger"]

SCHEMA_NAME = "provgate-ledger"
"""SCHEMA_NAME is the ``meta.schema`` value that marks a provgate ledger file."""
SCHEMA_VERSION = 1
"""SCHEMA_VERSION is the ``meta.version`` this code reads and writes."""

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE entries (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)",
    "CREATE TABLE subtrees (level INTEGER NOT NULL, n INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (level, n)) WITHOUT ROWID",
    "CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)",
)
_TABLE_NAMES = frozenset({"meta", "entries", "subtrees", "checkpoints"})
_CHUNK = 1024
_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def _blob(value: object) -> bytes:
    """_blob returns a stored value as bytes, as it is: a row edited to TEXT still audits."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


class SQLiteLedger(BaseLedger):
    """SQLiteLedger stores the log in one SQLite file (see the module docstring)."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        origin: str,
        note_signer: NoteSigner,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        """__init__ opens the ledger at ``path``, creating it if the file does not exist.

        ``synchronous="NORMAL"`` (the default) is safe in WAL mode: a crash of
        the process loses nothing committed and the file never corrupts; a
        power loss may roll back the last commits as a whole (entries,
        subtrees and checkpoint together), so the log stays consistent with
        its own checkpoints. Use ``"FULL"`` (an fsync per append) where a
        checkpoint leaves the machine at once, so that a signed head can never
        be forgotten and re-signed differently after a power loss.

        Raises :class:`~prov_core.errors.ConfigError` naming the file when it
        is not a provgate ledger, has another schema version, or belongs to
        another origin.
        """
        Checkpoint(origin, 0, bytes(32))  # validates the origin
        if synchronous not in ("NORMAL", "FULL"):
            raise InputError("synchronous must be 'NORMAL' or 'FULL'")
        self.path = Path(path)
        self.origin = origin
        self.note_signer = note_signer
        self._lock = threading.RLock()
        self._frontier: Frontier | None = None
        if self.path.is_dir():
            raise ConfigError(f"ledger path {self.path} is a directory, not a SQLite file")
        if not self.path.parent.is_dir():
            raise ConfigError(f"ledger directory {self.path.parent} does not exist")
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open ledger {self.path}: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(f"ledger {self.path}: SQLite refused WAL mode (got {mode})")
            # NORMAL in WAL: see the docstring above for why this is safe.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._open_schema(conn)
        except sqlite3.Error as exc:
            conn.close()
            self._conn = None
            if getattr(exc, "sqlite_errorname", "") in _BUSY:
                raise LedgerError(f"ledger {self.path} is locked: {exc}") from exc
            raise ConfigError(f"{self.path} is not a usable provgate ledger: {exc}") from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _open_schema(self, conn: sqlite3.Connection) -> None:
        """_open_schema checks the file's schema and origin, creating them in a new file."""
        if not self._tables(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables(conn):  # another process may have created it meanwhile
                    for ddl in _TABLES:
                        conn.execute(ddl)
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [
                            ("schema", SCHEMA_NAME),
                            ("version", str(SCHEMA_VERSION)),
                            ("origin", self.origin),
                        ],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        tables = self._tables(conn)
        if not tables >= _TABLE_NAMES:
            raise ConfigError(
                f"{self.path} is not a provgate ledger: tables {sorted(tables)}, "
                f"expected {sorted(_TABLE_NAMES)}"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA_NAME:
            raise ConfigError(f"{self.path} is not a provgate ledger (meta.schema missing)")
        if meta.get("version") != str(SCHEMA_VERSION):
            raise ConfigError(
                f"ledger {self.path} has schema version {meta.get('version')}; "
                f"this provgate reads version {SCHEMA_VERSION}"
            )
        if meta.get("origin") != self.origin:
            raise ConfigError(
                f"ledger {self.path} belongs to log {meta.get('origin')!r}, not {self.origin!r}"
            )

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {str(r[0]) for r in rows}

    @contextlib.contextmanager
    def _db(self, doing: str) -> Iterator[sqlite3.Connection]:
        """_db holds the connection lock and maps sqlite3 errors to LedgerError."""
        with self._lock:
            if self._conn is None:
                raise LedgerError(f"ledger {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: cannot {doing}: {exc}") from exc

    @staticmethod
    def _head(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT size FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return int(row[0]) if row else 0

    def append(self, leaves: Sequence[bytes]) -> Appended:
        batch = check_leaves(leaves)
        hashes = [leaf_hash(leaf) for leaf in batch]
        with self._db("append") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # The write lock is ours: the stored head is the real one.
                first = self._head(conn)
                cached = self._frontier
                if cached is None or cached.size != first:
                    cached = Frontier.from_reader(first, self)  # another writer appended
                frontier = cached.copy()
                rows: list[tuple[int, int, bytes]] = []
                for h in hashes:
                    rows += frontier.append(h)
                size = frontier.size
                body = checkpoint_body(self.origin, size, frontier.root())
                note = self.note_signer.sign_note(body)
                if len(batch) == 1:
                    conn.execute("INSERT INTO entries (idx, leaf) VALUES (?, ?)", (first, batch[0]))
                else:
                    conn.executemany(
                        "INSERT INTO entries (idx, leaf) VALUES (?, ?)",
                        zip(range(first, size), batch, strict=True),
                    )
                conn.executemany("INSERT INTO subtrees (level, n, hash) VALUES (?, ?, ?)", rows)
                conn.execute("INSERT INTO checkpoints (size, note) VALUES (?, ?)", (size, note))
                conn.execute("COMMIT")
            except BaseException:
                self._frontier = None
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._frontier = frontier
        return Appended(first, size, note)

    def size(self) -> int:
        with self._db("read the size") as conn:
            return self._head(conn)

    def entry(self, index: int) -> bytes:
        with self._db(f"read entry {index}") as conn:
            size = self._head(conn)
            if not 0 <= index < size:
                raise InputError(f"no entry {index} in log {self.origin} of size {size}")
            row = conn.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise LedgerIntegrityError(f"entry {index} is missing from {self.path}")
        return _blob(row[0])

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        pos = max(start, 0)
        end = (1 << 63) - 1 if stop is None else stop
        while pos < end:
            with self._db("read entries") as conn:
                rows = conn.execute(
                    "SELECT idx, leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?",
                    (pos, end, _CHUNK),
                ).fetchall()
            for idx, leaf in rows:
                yield int(idx), _blob(leaf)
            if len(rows) < _CHUNK:
                return
            pos = int(rows[-1][0]) + 1

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        found: dict[tuple[int, int], bytes] = {}
        by_level: dict[int, list[int]] = {}
        for level, n in ids:
            by_level.setdefault(level, []).append(n)
        with self._db("read subtree hashes") as conn:
            for level, ns in by_level.items():
                lo, hi = min(ns), max(ns)
                if len(ns) > 8 and hi - lo < 2 * len(ns):  # a dense run: one range scan
                    cur = conn.execute(
                        "SELECT n, hash FROM subtrees WHERE level = ? AND n BETWEEN ? AND ?",
                        (level, lo, hi),
                    )
                    found.update(((level, int(n)), _blob(h)) for n, h in cur)
                    continue
                for n in ns:
                    row = conn.execute(
                        "SELECT hash FROM subtrees WHERE level = ? AND n = ?", (level, n)
                    ).fetchone()
                    if row is not None:
                        found[level, n] = _blob(row[0])
        try:
            return [found[i] for i in ids]
        except KeyError as exc:
            raise LedgerIntegrityError(
                f"subtree {exc.args[0]} is missing from {self.path}"
            ) from None

    def checkpoint(self, size: int) -> bytes:
        with self._db(f"read checkpoint {size}") as conn:
            row = conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        if row is None:
            raise InputError(f"log {self.origin} has no checkpoint at size {size}")
        return _blob(row[0])

    def latest_checkpoint(self) -> bytes | None:
        with self._db("read the latest checkpoint") as conn:
            row = conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else _blob(row[0])

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        pos = -1
        while True:
            with self._db("read checkpoints") as conn:
                rows = conn.execute(
                    "SELECT size, note FROM checkpoints WHERE size > ? ORDER BY size LIMIT ?",
                    (pos, _CHUNK),
                ).fetchall()
            for size, note in rows:
                yield int(size), _blob(note)
            if len(rows) < _CHUNK:
                return
            pos = int(rows[-1][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error as exc:
                    raise LedgerError(f"ledger {self.path}: cannot close: {exc}") from exc
                finally:
                    self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r}, origin={self.origin!r})"
