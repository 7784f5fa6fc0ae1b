"""The embedded ledger: one SQLite file in WAL mode.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)   -- schema, version, origin
    entries(
        idx    INTEGER PRIMARY KEY,          -- the log, 0-based
        hashes BLOB NOT NULL,                -- the subtrees leaf idx completes
        note   BLOB,                         -- signed checkpoint of size idx + 1, or NULL
        leaf   BLOB NOT NULL                 -- the entry, as appended
    )

One row per entry, so a single append writes one row into one B-tree.
Appending leaf ``i`` completes the subtrees ``(L, i >> L)`` for ``L = 0..k``,
where ``k`` is the number of trailing one bits of ``i``
(:func:`~prov_core.ledger.merkle.new_subtrees`); ``hashes`` holds their 32-byte
hashes concatenated, level 0 (the leaf hash) first. So subtree ``(L, n)`` is
bytes ``32 L .. 32 L + 31`` of row ``((n + 1) << L) - 1``. The last row of each
append carries the checkpoint signed for the new size; the others carry NULL.
The size of the log is ``idx + 1`` of the last row with a checkpoint.

The leaf hash is stored, never recomputed from ``leaf`` on reading: it is what
the checkpoints committed to, so an entry rewritten in place keeps its
committed hash beside it and the audit names it. Rows moved or swapped as a
whole take their hashes with them; the audit then finds stored hashes that
no longer combine into the signed roots (and checkpoints stored at the wrong
size), so the tampering is still detected, though named less precisely.

Concurrency: every append is one ``BEGIN IMMEDIATE`` transaction, which
takes SQLite's single write lock before reading anything, so the size it
reads is the committed head and no other writer (thread or process) can
append until it commits. Indices are therefore gap-free, unique and ordered,
and the rows, hashes and checkpoint of the new head commit together or not
at all. :meth:`SQLiteLedger.reserve` opens that transaction early: it reads
the head, yields it, and the append inside the block writes and commits in
the same transaction (leaving the block without one rolls back, taking
nothing). Waiting writers retry for ``busy_timeout`` seconds. Readers never
block writers (WAL). The right edge of the tree is cached per connection
and checked against the stored size inside each write transaction; when
another process has appended, it is reloaded (O(log n) hashes).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from hashlib import sha256
from pathlib import Path
from typing import Literal

from prov_core._sql import is_sqlite_busy
from prov_core.errors import ConfigError, InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger.base import Appended, BaseLedger, check_leaves
from prov_core.ledger.checkpoint import Checkpoint, CheckpointSigner, checkpoint_body
from prov_core.ledger.merkle import HASH_SIZE, Frontier

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "SQLiteLedger"]

SCHEMA_NAME = "provgate-ledger"
"""SCHEMA_NAME is the ``meta.schema`` value that marks a provgate ledger file."""
SCHEMA_VERSION = 2
"""SCHEMA_VERSION is the ``meta.version`` this code reads and writes."""

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE entries (idx INTEGER PRIMARY KEY, hashes BLOB NOT NULL, note BLOB,"
    " leaf BLOB NOT NULL)",
)
_TABLE_NAMES = frozenset({"meta", "entries"})
_CHUNK = 1024
_IN_LIST = 256  # row ids per "idx IN (...)" query
_WAL_AUTOCHECKPOINT = 4000
_INSERT = "INSERT INTO entries (idx, hashes, note, leaf) VALUES (?, ?, ?, ?)"
_HEAD = "SELECT idx FROM entries WHERE note IS NOT NULL ORDER BY idx DESC LIMIT 1"


def _blob(value: object) -> bytes:
    """_blob returns a stored value as bytes, as it is.

    Queries read every stored value ``CAST(... AS BLOB)``, so a row edited to
    TEXT (even text that is not UTF-8) still reads, and audits, as its bytes.
    """
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
        note_signer: CheckpointSigner,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        """__init__ opens the ledger at ``path``, creating it if the file does not exist.

        ``synchronous="NORMAL"`` (the default) is safe in WAL mode: a crash of
        the process loses nothing committed and the file never corrupts; a
        power loss may roll back the last commits as a whole (entries,
        subtree hashes and checkpoint together), so the log stays consistent with
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
        self._reserved = False  # a reserve() transaction is open on the connection
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
            # A WAL checkpoint (copy back into the file, fsync) every 4,000 pages
            # (16 MB, ~10,000 entries) rather than SQLite's 1,000: in a run of single
            # appends it lowered the mean by ~30 us; the WAL file stays <= ~16 MB.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT}")
            self._open_schema(conn)
        except sqlite3.Error as exc:
            conn.close()
            self._conn = None
            if is_sqlite_busy(exc):
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
        row = conn.execute(_HEAD).fetchone()
        return int(row[0]) + 1 if row else 0

    def append(self, leaves: Sequence[bytes]) -> Appended:
        batch = check_leaves(leaves)
        # RFC 9162 section 2.1.1: a leaf hash is SHA-256(0x00 || leaf).
        leaf_hashes = [sha256(b"\x00" + leaf).digest() for leaf in batch]
        with self._lock:  # _db() inlined: this is the hot path of every recorded step
            conn = self._conn
            if conn is None:
                raise LedgerError(f"ledger {self.path} is closed")
            try:
                if self._reserved:  # reserve() holds the write transaction already
                    self._reserved = False
                else:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    frontier = self._frontier_in_write(conn)
                    first = frontier.size
                    rows: list[tuple[int, bytes, bytes | None, bytes]] = []
                    for i, (leaf, h) in enumerate(zip(batch, leaf_hashes, strict=True)):
                        rows.append((first + i, frontier.append_stored(h), None, leaf))
                    size = frontier.size
                    note = self.note_signer.sign_note(
                        checkpoint_body(self.origin, size, frontier.root())
                    )
                    idx, hashes, _, leaf = rows[-1]
                    rows[-1] = (idx, hashes, note, leaf)
                    if len(rows) == 1:
                        conn.execute(_INSERT, rows[0])
                    else:
                        conn.executemany(_INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    self._frontier = None
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: cannot append: {exc}") from exc
            self._frontier = frontier
        return Appended(first, size, note, len(batch))

    @contextlib.contextmanager
    def reserve(self) -> Iterator[int]:
        """reserve takes the write lock and yields the index the next append will get.

        The append inside the block (from this thread) commits the transaction
        reserve opened; if the block leaves without appending, it rolls back.
        """
        with self._db("reserve the next index") as conn:
            conn.execute("BEGIN IMMEDIATE")
            self._reserved = True
            try:
                yield self._head(conn)
            finally:
                self._reserved = False
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def _frontier_in_write(self, conn: sqlite3.Connection) -> Frontier:
        """_frontier_in_write returns a copy of the stored head's frontier, inside the write lock.

        The head is re-read in the transaction; the cached frontier serves only
        when it is of that size (else another writer appended: reload it).
        """
        head = self._head(conn)
        cached = self._frontier
        if cached is None or cached.size != head:
            cached = Frontier.from_reader(head, self)
        return cached.copy()

    def size(self) -> int:
        with self._db("read the size") as conn:
            return self._head(conn)

    def entry(self, index: int) -> bytes:
        with self._db(f"read entry {index}") as conn:
            size = self._head(conn)
            if not 0 <= index < size:
                raise InputError(f"no entry {index} in log {self.origin} of size {size}")
            row = conn.execute(
                "SELECT CAST(leaf AS BLOB) FROM entries WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            raise LedgerIntegrityError(f"entry {index} is missing from {self.path}")
        return _blob(row[0])

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        pos = max(start, 0)
        end = (1 << 63) - 1 if stop is None else stop
        while pos < end:
            with self._db("read entries") as conn:
                rows = conn.execute(
                    "SELECT idx, CAST(leaf AS BLOB) FROM entries WHERE idx >= ? AND idx < ?"
                    " ORDER BY idx LIMIT ?",
                    (pos, end, _CHUNK),
                ).fetchall()
            for idx, leaf in rows:
                yield int(idx), _blob(leaf)
            if len(rows) < _CHUNK:
                return
            pos = int(rows[-1][0]) + 1

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        # Subtree (level, n) ends at leaf ((n + 1) << level) - 1; that row holds it.
        wanted = sorted({((n + 1) << level) - 1 for level, n in ids if level >= 0 and n >= 0})
        found: dict[int, bytes] = {}
        with self._db("read subtree hashes") as conn:
            if wanted and wanted[-1] - wanted[0] < 2 * len(wanted):  # dense: one range scan
                cur = conn.execute(
                    "SELECT idx, CAST(hashes AS BLOB) FROM entries WHERE idx BETWEEN ? AND ?",
                    (wanted[0], wanted[-1]),
                )
                found.update((int(i), _blob(h)) for i, h in cur)
            else:
                for at in range(0, len(wanted), _IN_LIST):
                    part = wanted[at : at + _IN_LIST]
                    marks = ",".join("?" * len(part))
                    cur = conn.execute(
                        f"SELECT idx, CAST(hashes AS BLOB) FROM entries WHERE idx IN ({marks})",
                        part,
                    )
                    found.update((int(i), _blob(h)) for i, h in cur)
        out = []
        for level, n in ids:
            row = found.get(((n + 1) << level) - 1) if level >= 0 and n >= 0 else None
            at = level * HASH_SIZE
            if row is None or len(row) < at + HASH_SIZE:
                raise LedgerIntegrityError(f"subtree {(level, n)} is missing from {self.path}")
            out.append(row[at : at + HASH_SIZE])
        return out

    def checkpoint(self, size: int) -> bytes:
        with self._db(f"read checkpoint {size}") as conn:
            row = conn.execute(
                "SELECT CAST(note AS BLOB) FROM entries WHERE idx = ?", (size - 1,)
            ).fetchone()
        if row is None or row[0] is None or size <= 0:
            raise InputError(f"log {self.origin} has no checkpoint at size {size}")
        return _blob(row[0])

    def latest_checkpoint(self) -> bytes | None:
        with self._db("read the latest checkpoint") as conn:
            row = conn.execute(
                "SELECT CAST(note AS BLOB) FROM entries WHERE note IS NOT NULL"
                " ORDER BY idx DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _blob(row[0])

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        pos = -1
        while True:
            with self._db("read checkpoints") as conn:
                rows = conn.execute(
                    "SELECT idx, CAST(note AS BLOB) FROM entries WHERE idx > ? AND note IS NOT NULL"
                    " ORDER BY idx LIMIT ?",
                    (pos, _CHUNK),
                ).fetchall()
            for idx, note in rows:
                yield int(idx) + 1, _blob(note)
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
