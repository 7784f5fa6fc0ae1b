"""The shared ledger: PostgreSQL, for many writers on many machines.

Schema (version 1, tables prefixed ``ledger_`` so the lineage index and the
snapshot store's metadata can share the database)::

    ledger_schema_migrations(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)
    ledger_meta(key TEXT PRIMARY KEY, value TEXT)      -- schema, origin
    ledger_entries(
        idx    BIGINT PRIMARY KEY,                     -- the log, 0-based
        hashes BYTEA NOT NULL,                         -- the subtrees leaf idx completes
        note   BYTEA,                                  -- checkpoint of size idx + 1, or NULL
        leaf   BYTEA NOT NULL                          -- the entry, as appended
    )
    ledger_head(id = 1, size BIGINT, frontier BYTEA)   -- the committed head, one row

``ledger_entries`` is laid out exactly as the SQLite backend's ``entries``
(see :mod:`~prov_core.ledger.sqlite`): subtree ``(L, n)`` is bytes
``32 L .. 32 L + 31`` of ``hashes`` in row ``((n + 1) << L) - 1``, and the last
row of each append carries the checkpoint signed for the new size.

``ledger_head`` is the log's write lock and the state a writer needs: the
committed size and the right edge of the tree (its complete subtrees'
hashes, largest first, concatenated; :class:`~prov_core.ledger.merkle.Frontier`).
An append is one transaction (READ COMMITTED) in two round trips::

    BEGIN; SELECT size, frontier, pg_current_xact_id() FROM ledger_head WHERE id = 1 FOR UPDATE
    -- extend the frontier, sign the checkpoint of the new size
    WITH rows AS (INSERT INTO ledger_entries ...) UPDATE ledger_head SET size, frontier;
    SET LOCAL synchronous_commit = off; COMMIT; SELECT pg_current_xact_id()

``FOR UPDATE`` makes every other writer, on any machine, wait for the row;
once it is released PostgreSQL re-reads the row's newest committed version,
so the size a writer sees is the committed head. Indices are therefore
gap-free, unique (also the primary key) and ordered, and the rows, hashes,
checkpoint and head commit together or not at all. The ``COMMIT`` does not
wait for the WAL flush, so the lock is released at once; the last statement
commits synchronously in a transaction of its own, so the append returns only
once its commit record is on disk, and concurrent writers' flushes combine
(group commit; ``strict_commit=True`` flushes under the lock instead). Why
this and not an advisory lock or a sequence, with the measurements:
``docs/scaling.md``.

Migrations: :data:`MIGRATIONS` is the ordered list of steps; step ``v``
brings the schema to version ``v``. On opening, one transaction takes an
advisory lock (so concurrent openers do not race), reads the highest
applied version, refuses a newer one than this code knows
(:class:`~prov_core.errors.ConfigError` naming it), applies the missing steps
in order, records each, and records the origin of a new log.

Connection loss: the server rolls back a transaction whose connection is
gone, so an append that fails before its ``COMMIT`` was sent took nothing;
:meth:`PostgresLedger.append` reconnects and retries it (``retries`` times,
then :class:`~prov_core.errors.LedgerError`). When the connection is lost
during ``COMMIT`` the outcome is unknown to the client: the append reconnects
and asks the server (``pg_xact_status`` of the transaction's id) whether it
committed, and returns its result or retries accordingly; if the server
cannot tell, it raises LedgerError saying the outcome is unknown rather than
risk a duplicate. An append inside :meth:`~PostgresLedger.reserve` is never
retried (the reservation died with the connection).

Needs PostgreSQL 13 or later (``pg_current_xact_id``, ``pg_xact_status``).

The password of the connection URL is never shown: errors and ``repr`` name
the database by :func:`mask_url`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from hashlib import sha256
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prov_core.errors import ConfigError, InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger.base import Appended, BaseLedger, check_leaves
from prov_core.ledger.checkpoint import Checkpoint, CheckpointSigner, checkpoint_body
from prov_core.ledger.merkle import HASH_SIZE, Frontier

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "SCHEMA_NAME", "SCHEMA_VERSION", "PostgresLedger", "mask_url"]

SCHEMA_NAME = "provgate-ledger"
"""SCHEMA_NAME is the ``ledger_meta.schema`` value that marks a provgate ledger."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the log, its head and its metadata.
    (
        "CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, hashes BYTEA NOT NULL,"
        " note BYTEA, leaf BYTEA NOT NULL)",
        "CREATE TABLE ledger_head (id SMALLINT PRIMARY KEY CHECK (id = 1),"
        " size BIGINT NOT NULL, frontier BYTEA NOT NULL)",
        "INSERT INTO ledger_head (id, size, frontier) VALUES (1, 0, '')",
        f"INSERT INTO ledger_meta (key, value) VALUES ('schema', '{SCHEMA_NAME}')",
    ),
)
"""MIGRATIONS lists the schema steps in order: step ``v`` (1-based) makes version ``v``."""
SCHEMA_VERSION = len(MIGRATIONS)
"""SCHEMA_VERSION is the newest schema version this code reads and writes."""

_MIGRATION_LOCK = 0x70726F76_6C656467  # "provledg": serializes concurrent openers
_CHUNK = 1024
_INSTALL = "install it with: pip install 'provgate[postgres]'"
_LOCK_HEAD = (
    "SELECT size, frontier, pg_current_xact_id()::text FROM ledger_head WHERE id = 1 FOR UPDATE"
)
# The write is sent as literal SQL built from integers and hex digits only
# (nothing to escape, so nothing to inject): the leaves are encoded before the
# head is locked, and the rows, the head and the COMMIT travel as one simple
# query; if the write fails, the server skips the rest.
_INSERT = "WITH new AS (INSERT INTO ledger_entries (idx, hashes, note, leaf) VALUES {rows})"
_UPDATE = " UPDATE ledger_head SET size = {size}, frontier = {frontier} WHERE id = 1"
_COMMIT = "; COMMIT"
# Group commit: the COMMIT does not wait for the WAL flush, so the head lock is
# released at once; the statement after it runs in a transaction of its own
# that is given an xid and commits synchronously: its flush covers the WAL up
# to and past the append's commit record, and it returns only then.
_BARRIER = "SELECT pg_current_xact_id()"
_GROUP_COMMIT = f"; SET LOCAL synchronous_commit = off; COMMIT; {_BARRIER}"
_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """mask_url returns ``url`` with its password replaced by ``***``.

    Handles both URL (``postgresql://user:pw@host/db?password=pw``) and
    key/value (``host=h password=pw``) connection strings.
    """
    if "://" not in url:
        return _PASSWORD_KV.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:***@{hostport}"
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable PostgreSQL URL>"


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the PostgreSQL ledger needs psycopg 3; {_INSTALL}") from exc


def _hex(value: bytes) -> str:
    """_hex returns a bytea literal of ``value``: hex digits only, safe in any SQL text."""
    return f"decode('{value.hex()}','hex')"


def _connection_lost(conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """_connection_lost tells whether ``exc`` means the connection (not the statement) failed.

    SQLSTATE class 08 is a connection exception, 57P01-57P03 a terminated or
    shut-down server; a client-side failure (socket closed) has no SQLSTATE.
    """
    import psycopg

    if conn.closed or conn.broken:
        return True
    state = getattr(exc, "sqlstate", None)
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith("08") or state in {"57P01", "57P02", "57P03"}


class _Lost(Exception):
    """_Lost: the connection died and the append certainly did not commit (retryable)."""


class PostgresLedger(BaseLedger):
    """PostgresLedger stores the log in a PostgreSQL database (see the module docstring)."""

    kind = "postgres"

    def __init__(
        self,
        url: str,
        origin: str,
        note_signer: CheckpointSigner,
        *,
        connect_timeout: float = 10.0,
        lock_timeout: float = 30.0,
        retries: int = 2,
        strict_commit: bool = False,
    ) -> None:
        """__init__ connects to ``url``, migrating its schema (creating the log) as needed.

        ``lock_timeout`` bounds how long an append waits for other writers
        (then LedgerError). ``retries`` is how many times an append is
        reconnected and retried after a connection loss that certainly took
        nothing.

        ``strict_commit`` chooses when the head lock is released. By default
        (group commit) an append commits without waiting for the WAL flush,
        which releases the lock at once, and then waits for the flush before
        it returns: an append is acknowledged only once it is on disk, and
        the flushes of concurrent writers combine. Other readers may see an
        entry and its checkpoint a few milliseconds before it is on disk; a
        crash of the server in that window loses the unacknowledged tail of
        the log as a whole, and a checkpoint read in it could later be signed
        again over different entries. ``strict_commit=True`` flushes before
        releasing the lock, so nothing is visible before it is durable, at
        a fraction of the throughput (``docs/scaling.md``).

        Raises :class:`~prov_core.errors.ConfigError` when psycopg is missing,
        the URL does not parse, the database holds a newer schema, a table
        that is not provgate's, or a log of another origin;
        :class:`~prov_core.errors.LedgerError` when the server cannot be reached.
        """
        Checkpoint(origin, 0, bytes(32))  # validates the origin
        if retries < 0:
            raise InputError("retries must be >= 0")
        _require_psycopg()
        import psycopg.conninfo

        self.url = mask_url(url)
        try:
            self._secret = psycopg.conninfo.conninfo_to_dict(url).get("password")
        except psycopg.Error as exc:
            raise ConfigError(f"bad PostgreSQL URL {self.url}: {self._scrub(exc)}") from exc
        self._dsn = url
        self.origin = origin
        self.note_signer = note_signer
        self._connect_timeout = connect_timeout
        self._lock_timeout = lock_timeout
        self._retries = retries
        self._commit_sql = _COMMIT if strict_commit else _GROUP_COMMIT
        self._lock = threading.RLock()  # one connection per ledger; reentrant for reserve()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        # (size, frontier, xid) of the head locked by reserve(), while its block runs.
        self._reserved: tuple[int, Frontier, str] | None = None
        conn = self._connect()
        try:
            self._migrate(conn)
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------

    def _scrub(self, exc: BaseException | str) -> str:
        """_scrub returns an error message with the URL's password removed."""
        text = str(exc).strip()
        secret = getattr(self, "_secret", None)
        if secret:
            text = text.replace(str(secret), "***")
        return text

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout)),
                application_name="provgate",
            )
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"bad PostgreSQL URL {self.url}: {self._scrub(exc)}") from exc
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to ledger {self.url}: {self._scrub(exc)}") from exc
        try:
            conn.execute(
                f"SET lock_timeout = {int(self._lock_timeout * 1000)}; SET synchronous_commit = on"
            )
        except psycopg.Error as exc:
            conn.close()
            raise LedgerError(f"cannot set up ledger {self.url}: {self._scrub(exc)}") from exc
        self._conn = conn
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        """_connection returns the open connection, reconnecting a broken one."""
        if self._closed:
            raise LedgerError(f"ledger {self.url} is closed")
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _db(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """_db holds the connection lock and maps psycopg errors to LedgerError."""
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except psycopg.Error as exc:
                raise LedgerError(f"ledger {self.url}: cannot {doing}: {self._scrub(exc)}") from exc

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        import psycopg

        if conn.closed:
            return
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")

    # -- schema ---------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """_migrate brings the schema to SCHEMA_VERSION in one transaction and checks the origin."""
        import psycopg

        from prov_core._postgres import apply_migrations  # shared with the indexes and store

        try:
            with conn.transaction():
                apply_migrations(
                    conn,
                    table="ledger_schema_migrations",
                    steps=MIGRATIONS,
                    lock=_MIGRATION_LOCK,
                    what=f"ledger {self.url}",
                )
                conn.execute(
                    "INSERT INTO ledger_meta (key, value) VALUES ('origin', %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (self.origin,),
                )
                meta = dict(conn.execute("SELECT key, value FROM ledger_meta").fetchall())
        except psycopg.errors.DuplicateTable as exc:
            raise ConfigError(
                f"{self.url} holds ledger tables that are not a provgate ledger"
                f" (no schema_migrations record): {self._scrub(exc)}"
            ) from exc
        except psycopg.Error as exc:
            raise LedgerError(f"cannot open ledger {self.url}: {self._scrub(exc)}") from exc
        if meta.get("schema") != SCHEMA_NAME:
            raise ConfigError(f"{self.url} is not a provgate ledger (ledger_meta.schema missing)")
        if meta.get("origin") != self.origin:
            raise ConfigError(
                f"ledger {self.url} belongs to log {meta.get('origin')!r}, not {self.origin!r}"
            )

    # -- writing --------------------------------------------------------------

    # The statements that open an append's transaction and lock the head, sent as
    # one round trip; the last one returns (size, frontier, xid).
    _begin_sql = f"BEGIN; {_LOCK_HEAD}"

    def _begin_locked(self, conn: psycopg.Connection[Any]) -> tuple[int, Frontier, str]:
        """_begin_locked opens a transaction and locks the head, in one round trip."""
        cur = conn.execute(self._begin_sql)
        while cur.nextset():
            pass
        return self._head_state(cur.fetchone())

    @staticmethod
    def _head_state(row: tuple[Any, ...] | None) -> tuple[int, Frontier, str]:
        """_head_state parses ``(size, frontier, xid)`` read from ``ledger_head``."""
        if row is None:
            raise LedgerIntegrityError("ledger_head has no row: the log's head is missing")
        size, blob, xid = int(row[0]), bytes(row[1]), str(row[2])
        if len(blob) % HASH_SIZE:
            raise LedgerIntegrityError(f"ledger_head.frontier is {len(blob)} bytes")
        hashes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        try:
            return size, Frontier(size, hashes), xid
        except InputError as exc:
            raise LedgerIntegrityError(f"ledger_head does not match size {size}: {exc}") from exc

    def append(self, leaves: Sequence[bytes]) -> Appended:
        import psycopg

        batch = check_leaves(leaves)
        # RFC 9162 section 2.1.1: a leaf hash is SHA-256(0x00 || leaf).
        leaf_hashes = [sha256(b"\x00" + leaf).digest() for leaf in batch]
        leaf_sql = [_hex(leaf) for leaf in batch]  # outside the lock
        with self._lock:
            reserved, self._reserved = self._reserved, None
            attempts = 0 if reserved else self._retries
            while True:
                conn = self._connection()
                try:
                    return self._append_once(conn, leaf_sql, leaf_hashes, reserved)
                except _Lost as lost:
                    if attempts <= 0:
                        cause = lost.__cause__
                        raise LedgerError(
                            f"ledger {self.url}: the connection was lost during an append,"
                            f" which was rolled back (nothing was appended): {lost}"
                        ) from (cause if isinstance(cause, psycopg.Error) else lost)
                    attempts -= 1

    def _append_once(
        self,
        conn: psycopg.Connection[Any],
        leaf_sql: list[str],
        leaf_hashes: list[bytes],
        reserved: tuple[int, Frontier, str] | None,
    ) -> Appended:
        """_append_once runs one append transaction; _Lost if the connection died uncommitted."""
        import psycopg

        committing = False
        xid = ""
        try:
            if reserved is None:
                first, frontier, xid = self._begin_locked(conn)
            else:
                first, frontier, xid = reserved
                frontier = frontier.copy()
            hashes: list[bytes] = []
            for h in leaf_hashes:
                created = frontier.append(h)
                # Level 0 first; more when the leaf completes subtrees above it.
                hashes.append(h if len(created) == 1 else b"".join([c[2] for c in created]))
            size = frontier.size
            note = self.note_signer.sign_note(checkpoint_body(self.origin, size, frontier.root()))
            committing = True
            rows = [
                f"({first + i},{_hex(h)},NULL,{leaf})"
                for i, (h, leaf) in enumerate(zip(hashes, leaf_sql, strict=True))
            ]
            rows[-1] = f"({size - 1},{_hex(hashes[-1])},{_hex(note)},{leaf_sql[-1]})"
            self._write_and_commit(
                conn,
                _INSERT.format(rows=",".join(rows))
                + _UPDATE.format(size=size, frontier=_hex(b"".join(frontier.hashes())))
                + self._commit_sql,
            )
        except psycopg.Error as exc:
            lost = _connection_lost(conn, exc)
            if lost:
                conn.close()
            else:
                self._rollback(conn)
            # Before the COMMIT was sent the server rolls back a transaction whose
            # client is gone; after, only the server knows whether it committed.
            if committing and self._committed(xid, exc):
                return Appended(first, size, note)
            if lost:
                raise _Lost(self._scrub(exc)) from exc
            raise LedgerError(f"ledger {self.url}: cannot append: {self._scrub(exc)}") from exc
        except BaseException:
            self._rollback(conn)
            raise
        return Appended(first, size, note)

    def _write_and_commit(self, conn: psycopg.Connection[Any], sql: str) -> None:
        """_write_and_commit stores the rows and the head and commits, in one round trip.

        The head row stays locked until the COMMIT, so every round trip (and
        every microsecond of client work) saved here is time other writers do
        not wait.
        """
        conn.execute(sql)

    def _committed(self, xid: str, exc: BaseException) -> bool:
        """_committed asks the server whether transaction ``xid`` committed.

        Raises LedgerError when that cannot be known (the append's outcome is unknown).
        """
        import psycopg

        deadline = time.monotonic() + max(self._lock_timeout, 1.0)
        while True:
            try:
                conn = self._connection()
                row = conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
            except (psycopg.Error, LedgerError) as again:
                raise LedgerError(
                    f"ledger {self.url}: the connection was lost while committing an append and"
                    f" cannot be re-established, so whether it was appended is unknown:"
                    f" {self._scrub(again)}"
                ) from exc
            status = row[0] if row else None
            if status == "committed":
                try:  # a group commit may not be on disk yet: wait for the flush
                    conn.execute(_BARRIER)
                except psycopg.Error as again:
                    raise LedgerError(
                        f"ledger {self.url}: an append committed but whether it is on disk is"
                        f" unknown (the flush failed): {self._scrub(again)}"
                    ) from exc
                return True
            if status == "aborted":
                return False
            if status != "in progress" or time.monotonic() > deadline:
                raise LedgerError(
                    f"ledger {self.url}: the connection was lost while committing an append and"
                    f" the server reports its transaction as {status!r}: whether it was"
                    f" appended is unknown; check the log before appending it again"
                ) from exc
            time.sleep(0.05)

    @contextlib.contextmanager
    def reserve(self) -> Iterator[int]:
        """reserve locks the head row and yields the index the next append will get.

        The append inside the block (from this thread) commits the transaction
        reserve opened; if the block leaves without appending, it rolls back.
        """
        import psycopg
        from psycopg.pq import TransactionStatus

        with self._lock:
            attempts = self._retries
            while True:
                conn = self._connection()
                try:
                    self._reserved = self._begin_locked(conn)
                    break
                except psycopg.Error as exc:
                    lost = _connection_lost(conn, exc)
                    if lost:
                        conn.close()
                        if attempts > 0:  # nothing is held yet: reconnect and try again
                            attempts -= 1
                            continue
                    self._rollback(conn)
                    raise LedgerError(
                        f"ledger {self.url}: cannot reserve the next index: {self._scrub(exc)}"
                    ) from exc
            try:
                yield self._reserved[0]
            finally:
                self._reserved = None
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    self._rollback(conn)

    # -- reading --------------------------------------------------------------

    @staticmethod
    def _size(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT size FROM ledger_head WHERE id = 1").fetchone()
        if row is None:
            raise LedgerIntegrityError("ledger_head has no row: the log's head is missing")
        return int(row[0])

    def size(self) -> int:
        with self._db("read the size") as conn:
            return self._size(conn)

    def entry(self, index: int) -> bytes:
        with self._db(f"read entry {index}") as conn:
            size = self._size(conn)
            if not 0 <= index < size:
                raise InputError(f"no entry {index} in log {self.origin} of size {size}")
            row = conn.execute(
                "SELECT leaf FROM ledger_entries WHERE idx = %s", (index,)
            ).fetchone()
        if row is None:
            raise LedgerIntegrityError(f"entry {index} is missing from {self.url}")
        return bytes(row[0])

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        pos = max(start, 0)
        end = (1 << 63) - 1 if stop is None else stop
        while pos < end:
            with self._db("read entries") as conn:
                rows = conn.execute(
                    "SELECT idx, leaf FROM ledger_entries WHERE idx >= %s AND idx < %s"
                    " ORDER BY idx LIMIT %s",
                    (pos, end, _CHUNK),
                ).fetchall()
            for idx, leaf in rows:
                yield int(idx), bytes(leaf)
            if len(rows) < _CHUNK:
                return
            pos = int(rows[-1][0]) + 1

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        # Subtree (level, n) ends at leaf ((n + 1) << level) - 1; that row holds it.
        wanted = sorted(
            {((n + 1) << level) - 1 for level, n in ids if 0 <= level < 63 and 0 <= n < 1 << 62}
        )
        wanted = [w for w in wanted if w < 1 << 63]
        found: dict[int, bytes] = {}
        if wanted:
            with self._db("read subtree hashes") as conn:
                cur = conn.execute(
                    "SELECT idx, hashes FROM ledger_entries WHERE idx = ANY(%s::bigint[])",
                    (wanted,),
                )
                found.update((int(i), bytes(h)) for i, h in cur)
        out = []
        for level, n in ids:
            row = found.get(((n + 1) << level) - 1) if level >= 0 and n >= 0 else None
            at = level * HASH_SIZE
            if row is None or len(row) < at + HASH_SIZE:
                raise LedgerIntegrityError(f"subtree {(level, n)} is missing from {self.url}")
            out.append(row[at : at + HASH_SIZE])
        return out

    def checkpoint(self, size: int) -> bytes:
        row = None
        if 0 < size < 1 << 63:
            with self._db(f"read checkpoint {size}") as conn:
                row = conn.execute(
                    "SELECT note FROM ledger_entries WHERE idx = %s", (size - 1,)
                ).fetchone()
        if row is None or row[0] is None:
            raise InputError(f"log {self.origin} has no checkpoint at size {size}")
        return bytes(row[0])

    def latest_checkpoint(self) -> bytes | None:
        with self._db("read the latest checkpoint") as conn:
            row = conn.execute(
                "SELECT note FROM ledger_entries WHERE note IS NOT NULL ORDER BY idx DESC LIMIT 1"
            ).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        pos = -1
        while True:
            with self._db("read checkpoints") as conn:
                rows = conn.execute(
                    "SELECT idx, note FROM ledger_entries WHERE idx > %s AND note IS NOT NULL"
                    " ORDER BY idx LIMIT %s",
                    (pos, _CHUNK),
                ).fetchall()
            for idx, note in rows:
                yield int(idx) + 1, bytes(note)
            if len(rows) < _CHUNK:
                return
            pos = int(rows[-1][0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.url!r}, origin={self.origin!r})"
