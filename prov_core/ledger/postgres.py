"""The shared ledger: PostgreSQL, for many writers on many machines.

The tables and procedures are in :mod:`~prov_core.ledger._postgres_schema`.
Why this design and not a lock per append, a sequence or a sequencer daemon,
with the measurements: ``docs/scaling.md``.

**Group append** (flat combining). An append of up to :attr:`PostgresLedger.group_limit`
entries is one ``CALL ledger_submit(...)``: the server commits it as a
*submission* (a row with a random 16-byte id chosen by the writer), then
waits for the writers' lock, a session-level advisory lock. Whoever gets the
lock looks at its submission:

- another writer already integrated it: it lets the lock go at once and
  returns the index and the checkpoint its entries landed under. It signs
  nothing, and the lock passed on inside the server, with no round trip to
  this client;
- it is still pending: this writer leads. It keeps the lock, gets the head
  (size and right edge of the tree) and every pending submission in arrival
  order (up to 1024), extends the tree, signs **one checkpoint for the whole
  batch**, and ``CALL ledger_integrate(...)`` writes the entries, the
  checkpoint and the new head in one transaction, commits it synchronously
  (nothing is visible before it is on disk) and releases the lock.

While one leader works, the other writers' submissions pile up; the next
leader takes them all. Indices are gap-free, unique (also the primary key)
and ordered; each append's entries are consecutive; the rows, hashes,
checkpoint and head commit together or not at all. ``ledger_integrate`` also
moves the head only from the size the leader read (a writer that bypassed
the lock makes it fail and start over), so two writers can never both
append at one index.

**The sequencer's write** (:meth:`~PostgresLedger.append_requests`,
:mod:`~prov_core.ledger.sequencer`): many writers' requests in one
transaction under one checkpoint, the writers' lock held, each request's
id stored as an integrated submission; :meth:`~PostgresLedger.withdraw_request`
settles a request whose writer got no answer.

**Direct append**: :meth:`~PostgresLedger.reserve` and larger batches take the
writers' lock and lock the head row (``SELECT ... FOR UPDATE``), write their
entries and checkpoint themselves, and commit synchronously (two round
trips, the lock held across both).

**Failures.** A writer killed after its submission committed leaves it
pending: the next leader integrates it, exactly once (then it is that
writer's one in-flight append, durable without an acknowledgement). A lost
connection releases the lock (the server ends the session); the append
reconnects and submits again, which stores nothing new (the id is the
primary key and integrated submissions are kept), then finds its submission
pending or integrated (``retries`` times, then LedgerError). An append that
fails (a lock timeout, the leader's signer, a storage error) *withdraws* its
submission (first_idx = -1, committed synchronously) so that no later leader
integrates it; a leader withdraws its own before it lets the lock go. If the
withdrawal cannot be done either, the LedgerError says the outcome is
unknown. A direct append lost during its ``COMMIT`` asks the server
(``pg_xact_status`` of its transaction id) whether it committed. An append
inside :meth:`~PostgresLedger.reserve` is never retried (the reservation died
with the connection).

Migrations: :data:`MIGRATIONS` is the ordered list of steps; step ``v``
brings the schema to version ``v``. On opening, one transaction takes an
advisory lock (so concurrent openers do not race), reads the highest
applied version, refuses a newer one than this code knows
(:class:`~prov_core.errors.ConfigError` naming it), applies the missing steps
in order, records each, and records the origin of a new log.

Needs PostgreSQL 13 or later (procedures with INOUT arguments,
``pg_current_xact_id``, ``pg_xact_status``) and PL/pgSQL (installed by
default). Sessions run with ``synchronous_commit = off``; the commits that
must be durable before an append returns set it on.

The password of the connection URL is never shown: errors and ``repr`` name
the database by :func:`mask_url`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from prov_core._pg_session import (
    apply_migrations,
    connect_session,
    mask_url,
    parse_url,
    require_psycopg,
    scrub,
)
from prov_core.errors import ConfigError, InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger._postgres_schema import (
    MIGRATIONS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    WRITERS_LOCK,
)
from prov_core.ledger.base import Appended, BaseLedger, check_leaves
from prov_core.ledger.checkpoint import Checkpoint, CheckpointSigner, checkpoint_body
from prov_core.ledger.merkle import HASH_SIZE, Frontier, leaf_hash

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "MIGRATIONS",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "PostgresLedger",
    "mask_url",
]

_MIGRATION_LOCK = 0x70726F76_6C656467  # "provledg": serializes concurrent openers
_CHUNK = 1024
_LOCK_AND_BEGIN = f"SELECT pg_advisory_lock({WRITERS_LOCK}); BEGIN; "
_LOCK_HEAD = (
    "SELECT size, frontier, pg_current_xact_id()::text FROM ledger_head WHERE id = 1 FOR UPDATE"
)
# The write is sent as literal SQL built from integers and hex digits only
# (nothing to escape, so nothing to inject): the leaves are encoded before the
# head is locked, and the rows, the head and the COMMIT travel as one simple
# query; if the write fails, the server skips the rest.
_INSERT = "WITH new AS (INSERT INTO ledger_entries (idx, hashes, note, leaf) VALUES {rows})"
_UPDATE = " UPDATE ledger_head SET size = {size}, frontier = {frontier} WHERE id = 1"
# Sessions commit without waiting for the WAL flush (synchronous_commit = off,
# set on connecting); what must be durable before it returns says so.
_STRICT_COMMIT = "; SET LOCAL synchronous_commit = on; COMMIT"

# Group append (flat combining; the module docstring).
_SUBMIT = (
    "CALL ledger_submit({sid}, {hashes}, {leaves}, {batch}, NULL, NULL, NULL, NULL, NULL, NULL)"
)
_UNLOCK = "SELECT pg_advisory_unlock_all()"
# Where a submission is: no row (never stored), first_idx NULL (pending), -1
# (withdrawn) or its first index, with the size and checkpoint it landed under.
_STATUS = (
    "SELECT s.first_idx, s.size, e.note FROM ledger_submissions s"
    " LEFT JOIN ledger_entries e ON e.idx = s.size - 1 WHERE s.id = {sid}"
)
_INTEGRATE = (
    "CALL ledger_integrate({old_size}, {size}, {frontier}, {note},"
    " ARRAY[{sids}]::bytea[], ARRAY[{firsts}]::bigint[], ARRAY[{hashes}]::bytea[])"
)
_WITHDRAW = (
    "BEGIN; SET LOCAL synchronous_commit = on; UPDATE ledger_submissions"
    " SET first_idx = -1, hashes = '', leaves = NULL WHERE id = {sid} AND first_idx IS NULL;"
    " COMMIT; "
)
_BATCH = 1024  # submissions integrated per transaction, at most
_MOVED = {"PVG01", "PVG02"}  # ledger_integrate: the head moved, a submission was withdrawn
_MOVES = 8  # how often a leader starts over after _MOVED before it gives up
# A sequencer's write that found the head elsewhere (division by zero: its head update
# matched no row) or a request id already stored (unique violation).
_CONFLICTS = {"22012", "23505"}


def _hex(value: bytes) -> str:
    """_hex returns a bytea literal of ``value``: hex digits only, safe in any SQL text."""
    return f"decode('{value.hex()}','hex')"


def _one_row(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """_one_row returns the row a CALL returned (its INOUT arguments)."""
    row: tuple[Any, ...] | None = cur.fetchone()
    if row is None:
        raise LedgerIntegrityError("a ledger procedure returned no row")
    return row


def _tuple_results(cur: psycopg.Cursor[Any]) -> list[list[tuple[Any, ...]]]:
    """_tuple_results returns the rows of every statement that returned rows, in order."""
    out = []
    while True:
        if cur.description is not None:
            out.append(cur.fetchall())
        if not cur.nextset():
            return out


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


def _encode_leaves(batch: list[bytes]) -> tuple[list[str], list[bytes]]:
    """_encode_leaves returns the leaves as SQL literals and their RFC 9162 leaf hashes."""
    return [_hex(leaf) for leaf in batch], [leaf_hash(leaf) for leaf in batch]


def _encode_requests(
    requests: Sequence[tuple[bytes, Sequence[bytes]]],
) -> list[tuple[bytes, list[str], list[bytes]]]:
    """_encode_requests checks requests and returns (id, leaves as SQL, leaf hashes) each."""
    encoded = []
    for rid, leaves in requests:
        if len(rid) != 16:
            raise InputError("a request id is 16 bytes")
        encoded.append((rid, *_encode_leaves(check_leaves(leaves))))
    if not encoded:
        raise InputError("no requests to append")
    return encoded


class _Lost(Exception):
    """_Lost: the connection died and the append certainly did not commit (retryable)."""


class PostgresLedger(BaseLedger):
    """PostgresLedger stores the log in a PostgreSQL database (see the module docstring)."""

    kind = "postgres"
    group_limit: ClassVar[int] = 64
    """group_limit: batches of up to this many entries go through group append."""
    _commit_sql: ClassVar[str] = f"{_STRICT_COMMIT}; {_UNLOCK}"

    def __init__(
        self,
        url: str,
        origin: str,
        note_signer: CheckpointSigner,
        *,
        connect_timeout: float = 10.0,
        lock_timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        """__init__ connects to ``url``, migrating its schema (creating the log) as needed.

        ``lock_timeout`` bounds how long an append waits for other writers
        (then LedgerError). ``retries`` is how many times an append is
        reconnected and retried after a connection loss that certainly took
        nothing.

        Raises :class:`~prov_core.errors.ConfigError` when psycopg is missing,
        the URL does not parse, the database holds a newer schema, a table
        that is not provgate's, or a log of another origin;
        :class:`~prov_core.errors.LedgerError` when the server cannot be reached.
        """
        Checkpoint(origin, 0, bytes(32))  # validates the origin
        if retries < 0:
            raise InputError("retries must be >= 0")
        require_psycopg("ledger")
        self.url, self._secret = parse_url(url)
        self._dsn = url
        self.origin = origin
        self.note_signer = note_signer
        self._connect_timeout = connect_timeout
        self._lock_timeout = lock_timeout
        self._retries = retries
        self._lock = threading.RLock()  # one connection per ledger; reentrant for reserve()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        # (size, frontier, xid) of the head locked by reserve(), while its block runs.
        self._reserved: tuple[int, Frontier, str] | None = None
        # (size, frontier) of the head append_requests wrote last (the sequencer's).
        self._tail: tuple[int, Frontier] | None = None
        conn = self._connect()
        try:
            self._migrate(conn)
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------

    def _scrub(self, exc: BaseException | str) -> str:
        """_scrub returns an error message with the URL's password removed."""
        return scrub(exc, self._secret)

    def _connect(self) -> psycopg.Connection[Any]:
        # Commits are not flushed unless they say so (the module docstring).
        conn = connect_session(
            self._dsn,
            where=f"ledger {self.url}",
            secret=self._secret,
            error=LedgerError,
            connect_timeout=self._connect_timeout,
            lock_timeout=self._lock_timeout,
            synchronous_commit=False,
        )
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
                if self._reserved is None:  # a multi-statement write may have left it failed
                    self._rollback(conn)
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

        try:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
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
    _begin_sql = f"{_LOCK_AND_BEGIN}{_LOCK_HEAD}"

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
        leaf_sql, leaf_hashes = _encode_leaves(check_leaves(leaves))  # outside the lock
        with self._lock:
            if self._reserved is None and len(leaf_sql) <= self.group_limit:
                return self._group_append(leaf_sql, leaf_hashes)
            return self._direct_append(leaf_sql, leaf_hashes)

    # -- group append -----------------------------------------------------------

    def _group_append(self, leaf_sql: list[str], leaf_hashes: list[bytes]) -> Appended:
        """_group_append submits the entries, then leads or waits until they are integrated."""
        import psycopg

        sid = _hex(os.urandom(16))
        count = len(leaf_sql)
        submit = _SUBMIT.format(
            sid=sid,
            hashes=_hex(b"".join(leaf_hashes)),
            leaves=f"ARRAY[{','.join(leaf_sql)}]",
            batch=_BATCH,
        )
        wait = _SUBMIT.format(sid=sid, hashes="NULL", leaves="NULL", batch=_BATCH)
        call = submit
        attempts = self._retries
        moves = _MOVES
        sent = False
        while True:
            try:
                conn = self._connection()
            except LedgerError:
                if not sent:
                    raise
                return self._give_up(sid, count, None, lost=True)
            try:
                sent = True
                first, size, note, frontier, ids, hashes = _one_row(conn.execute(call))
                if frontier is None:  # another writer integrated it and released the lock
                    return self._landed(first, size, note, count)
                # This writer leads: it holds the lock and integrates the pending submissions.
                mine = self._integrate(conn, sid, (int(size), bytes(frontier), ids, hashes))
                if mine is not None:
                    return Appended(mine[0], mine[1], mine[2], count)
                call = wait  # its own lies beyond this batch: lead again
            except psycopg.Error as exc:
                lost = _connection_lost(conn, exc)
                if lost:
                    conn.close()  # the server releases what the session held
                    if attempts > 0:  # the submission is idempotent: send it again
                        attempts -= 1
                        call = submit
                        continue
                    return self._give_up(sid, count, exc, lost=True)
                if getattr(exc, "sqlstate", None) in _MOVED and moves > 0:
                    self._release(conn)
                    moves -= 1  # the head or a batch changed under the leader: lead again
                    call = wait
                    continue
                self._rollback(conn)
                return self._give_up(sid, count, exc, lost=False)
            except Exception as exc:  # e.g. the note signer failed while leading
                self._rollback(conn)
                return self._give_up(sid, count, exc, lost=False)
            except BaseException:
                self._rollback(conn)
                with contextlib.suppress(Exception):
                    self._withdraw(sid, count)
                self._release(conn)
                raise

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        """_release rolls back and lets go of the writers' lock, if the connection is usable."""
        import psycopg

        self._rollback(conn)
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(_UNLOCK)

    def _landed(self, first: Any, size: Any, note: Any, count: int) -> Appended:
        """_landed returns the append a submission became, read from its row."""
        if first is None:
            raise LedgerError(f"ledger {self.url}: a submitted append vanished from the table")
        if first < 0:
            raise LedgerError(f"ledger {self.url}: a submitted append was withdrawn by another")
        if note is None:
            raise LedgerIntegrityError(f"the checkpoint of size {size} is missing from {self.url}")
        return Appended(int(first), int(size), bytes(note), count)

    def _integrate(
        self,
        conn: psycopg.Connection[Any],
        sid: str,
        lead: tuple[int, bytes, list[bytes] | None, list[bytes] | None],
    ) -> tuple[int, int, bytes] | None:
        """_integrate appends the pending submissions as one batch under one checkpoint.

        ``lead`` is what ledger_submit gave the leader: the head's size and
        frontier, and the pending submissions' ids and leaf hashes. The caller
        holds the writers' lock; the write releases it. Returns ``(first
        index, size, checkpoint)`` of submission ``sid`` if it was in the
        batch, else None.
        """
        size, frontier_blob, ids, hashes = lead
        if not ids or not hashes:
            conn.execute(_UNLOCK)
            return None
        _, frontier, _ = self._head_state((size, frontier_blob, ""))
        sids: list[str] = []
        firsts: list[str] = []
        entry_hashes: list[str] = []
        mine = -1
        for sub, blob in zip(ids, hashes, strict=True):
            sub_sql = _hex(bytes(sub))
            if sub_sql == sid:
                mine = frontier.size
            sids.append(sub_sql)
            firsts.append(str(frontier.size))
            for at in range(0, len(blob), HASH_SIZE):
                entry_hashes.append(_hex(frontier.append_stored(bytes(blob[at : at + HASH_SIZE]))))
        new_size = frontier.size
        note = self.note_signer.sign_note(checkpoint_body(self.origin, new_size, frontier.root()))
        self._write_and_commit(
            conn,
            _INTEGRATE.format(
                old_size=size,
                size=new_size,
                frontier=_hex(b"".join(frontier.hashes())),
                note=_hex(note),
                sids=",".join(sids),
                firsts=",".join(firsts),
                hashes=",".join(entry_hashes),
            ),
        )
        return None if mine < 0 else (mine, new_size, note)

    def _withdraw(self, sid: str, count: int) -> Appended | None:
        """_withdraw takes back a pending submission; returns the append if it was integrated."""
        conn = self._connection()
        results = _tuple_results(conn.execute(_WITHDRAW.format(sid=sid) + _STATUS.format(sid=sid)))
        return self._settled(results[-1], count)

    def _settled(self, rows: list[tuple[Any, ...]], count: int) -> Appended | None:
        """_settled reads a _STATUS row: where the submission landed, or None (not appended)."""
        if not rows or rows[0][0] is None or rows[0][0] < 0:
            return None
        first, size, note = rows[0]
        return self._landed(first, size, note, count)

    def _give_up(self, sid: str, count: int, exc: BaseException | None, *, lost: bool) -> Appended:
        """_give_up withdraws a failed append and raises; returns it if it went through after all.

        Raises the error ``exc`` (a psycopg error mapped to LedgerError) when
        the withdrawal succeeded (nothing was appended, nor will be), or a
        LedgerError saying the outcome is unknown when it could not be done.
        A leader withdraws while it still holds the writers' lock (so no other
        writer can integrate the submission meanwhile) and then lets it go.
        """
        import psycopg

        try:
            done = self._withdraw(sid, count)
        except (psycopg.Error, LedgerError) as again:
            if isinstance(again, psycopg.Error) and self._conn is not None:
                if _connection_lost(self._conn, again):
                    self._conn.close()
                else:
                    self._rollback(self._conn)
            raise LedgerError(
                f"ledger {self.url}: an append was submitted but could not be completed nor"
                f" withdrawn, so whether it is appended is unknown (another writer may still"
                f" integrate it); check the log before appending it again: {self._scrub(again)}"
            ) from (exc or again)
        finally:
            if self._conn is not None:
                self._release(self._conn)
        if done is not None:
            return done
        if exc is None or lost:
            cause = exc if isinstance(exc, psycopg.Error) else None
            raise LedgerError(
                f"ledger {self.url}: the connection was lost during an append, which was rolled"
                f" back (nothing was appended): {self._scrub(exc or 'cannot reconnect')}"
            ) from cause
        if isinstance(exc, psycopg.Error):
            raise LedgerError(f"ledger {self.url}: cannot append: {self._scrub(exc)}") from exc
        raise exc

    # -- direct append ----------------------------------------------------------

    def _direct_append(self, leaf_sql: list[str], leaf_hashes: list[bytes]) -> Appended:
        """_direct_append locks the head and writes the entries itself (reserve, large batches)."""
        import psycopg

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

    def _batch_rows(
        self, first: int, frontier: Frontier, leaf_sql: list[str], leaf_hashes: list[bytes]
    ) -> tuple[int, bytes, str, str]:
        """_batch_rows extends ``frontier`` and signs the checkpoint of its new size.

        Returns (size, checkpoint, the entries' rows as SQL VALUES, the new
        frontier as a bytea literal).
        """
        hashes = [frontier.append_stored(h) for h in leaf_hashes]
        size = frontier.size
        note = self.note_signer.sign_note(checkpoint_body(self.origin, size, frontier.root()))
        rows = [
            f"({first + i},{_hex(h)},NULL,{leaf})"
            for i, (h, leaf) in enumerate(zip(hashes, leaf_sql, strict=True))
        ]
        rows[-1] = f"({size - 1},{_hex(hashes[-1])},{_hex(note)},{leaf_sql[-1]})"
        return size, note, ",".join(rows), _hex(b"".join(frontier.hashes()))

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
            size, note, rows, edge = self._batch_rows(first, frontier, leaf_sql, leaf_hashes)
            committing = True
            self._write_and_commit(
                conn,
                _INSERT.format(rows=rows) + _UPDATE.format(size=size, frontier=edge)
                + self._commit_sql,
            )  # fmt: skip
        except psycopg.Error as exc:
            lost = _connection_lost(conn, exc)
            if lost:
                conn.close()
            else:
                self._release(conn)
            # Before the COMMIT was sent the server rolls back a transaction whose
            # client is gone; after, only the server knows whether it committed.
            if committing and self._committed(xid, exc):
                return Appended(first, size, note, len(leaf_sql))
            if lost:
                raise _Lost(self._scrub(exc)) from exc
            raise LedgerError(f"ledger {self.url}: cannot append: {self._scrub(exc)}") from exc
        except BaseException:
            self._release(conn)
            raise
        return Appended(first, size, note, len(leaf_sql))

    # -- the sequencer's write ----------------------------------------------------

    def append_requests(
        self, requests: Sequence[tuple[bytes, Sequence[bytes]]]
    ) -> list[Appended | LedgerError]:
        """append_requests appends many writers' requests as one batch under one checkpoint.

        The write of :mod:`~prov_core.ledger.sequencer`: each request is
        ``(id, leaves)``, ``id`` 16 bytes chosen by its writer. The requests
        are appended in order, each one's entries consecutive, in one
        transaction with one signed checkpoint, under the writers' lock, and
        committed synchronously; each id is stored as an integrated
        submission, so that a writer that lost its sequencer can find where
        its request landed or withdraw it (:meth:`withdraw_request`). A
        request whose id is already stored is not appended again: its result
        is where it landed, or a LedgerError if it was withdrawn. Returns one
        result per request, in order.

        The head this handle wrote last is kept: while nobody else appends,
        the next call writes in one round trip, whose head update matches
        only if the head's size and frontier are still those; when it does
        not, the batch is written the long way (the head and the stored ids
        read first).
        """
        import psycopg

        encoded = _encode_requests(requests)
        with self._lock:
            if self._reserved is not None:
                raise LedgerError(f"ledger {self.url}: append_requests inside reserve()")
            tail, self._tail = self._tail, None
            if tail is not None:  # one round trip, checking the head is still that one
                first, frontier = tail[0], tail[1].copy()
                check = f" AND frontier = {_hex(b''.join(frontier.hashes()))}"
                write, results, rid = self._requests_write(encoded, first, frontier, {}, check)
                conn = self._connection()
                try:
                    results = self._send_requests_write(conn, _LOCK_AND_BEGIN + write, results, rid)
                except psycopg.Error as exc:
                    self._release(conn)
                    if getattr(exc, "sqlstate", None) not in _CONFLICTS:
                        raise LedgerError(
                            f"ledger {self.url}: cannot append: {self._scrub(exc)}"
                        ) from exc
                    # the head moved, or an id is stored: the long way
                except _Lost:  # certainly not committed: the long way
                    pass
                else:
                    self._tail = (frontier.size, frontier)
                    return results
            return self._append_requests_locked(encoded)

    def _append_requests_locked(
        self, encoded: list[tuple[bytes, list[str], list[bytes]]]
    ) -> list[Appended | LedgerError]:
        """_append_requests_locked appends the long way: lock, read the head and ids, write.

        The caller (append_requests) holds the handle's lock, outside reserve().
        """
        import psycopg

        attempts, moves = self._retries, _MOVES
        while True:
            conn = self._connection()
            try:
                return self._append_requests_once(conn, encoded)
            except _Lost as lost:
                if attempts <= 0:
                    raise LedgerError(
                        f"ledger {self.url}: the connection was lost during an append,"
                        f" which was rolled back (nothing was appended): {lost}"
                    ) from lost
                attempts -= 1
            except psycopg.Error as exc:
                self._release(conn)
                # Only a conflict (an id stored meanwhile) is worth another look.
                if moves <= 0 or getattr(exc, "sqlstate", None) not in _CONFLICTS:
                    raise LedgerError(
                        f"ledger {self.url}: cannot append: {self._scrub(exc)}"
                    ) from exc
                moves -= 1

    def _append_requests_once(
        self,
        conn: psycopg.Connection[Any],
        encoded: list[tuple[bytes, list[str], list[bytes]]],
    ) -> list[Appended | LedgerError]:
        """_append_requests_once: one try of the long way.

        Raises _Lost if the connection died and the batch certainly did not
        commit, a psycopg error (a conflict: try again) if the write failed.
        """
        import psycopg

        ids = ",".join(_hex(rid) for rid, _, _ in encoded)
        try:
            found = _tuple_results(
                conn.execute(
                    self._begin_sql
                    + "; SELECT s.id, s.first_idx, s.size, e.note FROM ledger_submissions s"
                    " LEFT JOIN ledger_entries e ON e.idx = s.size - 1"
                    f" WHERE s.id = ANY(ARRAY[{ids}]::bytea[])"
                )
            )
        except psycopg.Error as exc:
            if _connection_lost(conn, exc):
                conn.close()
                raise _Lost(self._scrub(exc)) from exc
            raise
        try:  # the writers' lock and the head row are held from here on
            first, frontier, _ = self._head_state(found[-2][0] if found[-2] else None)
            stored = {bytes(row[0]): row[1:] for row in found[-1]}
            write, results, rid = self._requests_write(encoded, first, frontier, stored)
        except BaseException:  # e.g. the checkpoint signer failed: let go of them
            self._release(conn)
            raise
        if write:
            results = self._send_requests_write(conn, write, results, rid)
            self._tail = (frontier.size, frontier)
        else:
            self._release(conn)
        return results

    def _requests_write(
        self,
        encoded: list[tuple[bytes, list[str], list[bytes]]],
        first: int,
        frontier: Frontier,
        stored: dict[bytes, tuple[Any, ...]],
        check: str = "",
    ) -> tuple[str, list[Appended | LedgerError], tuple[bytes, int]]:
        """_requests_write extends ``frontier`` with the requests not in ``stored`` and signs.

        Returns the write (the entries, the requests' ids and the head, moved
        only from ``first`` and where ``check`` (SQL, `` AND ...``) holds, then
        the COMMIT and the unlock; "" if nothing is to be written), each
        request's result as it will be once the write commits, and the id
        and index of the first request written.
        """
        results: list[Appended | LedgerError] = []
        leaf_sql: list[str] = []
        leaf_hashes: list[bytes] = []
        subs: list[tuple[bytes, int]] = []
        seen: set[bytes] = set()
        for rid, leaves, hashes in encoded:
            if rid in seen:  # only a confused or hostile writer sends one id twice
                results.append(LedgerError(f"ledger {self.url}: request id sent twice at once"))
                continue
            seen.add(rid)
            if rid in stored:
                at, size, note = stored[rid]
                try:
                    results.append(self._landed(at, size, note, len(leaves)))
                except LedgerError as exc:
                    results.append(exc)
                continue
            subs.append((rid, first + len(leaf_sql)))
            results.append(Appended(first + len(leaf_sql), 0, b"", len(leaves)))
            leaf_sql += leaves
            leaf_hashes += hashes
        if not leaf_sql:
            return "", results, (b"", -1)
        size, note, rows, edge = self._batch_rows(first, frontier, leaf_sql, leaf_hashes)
        write = (
            "WITH subs AS (INSERT INTO ledger_submissions (id, hashes, first_idx, size) VALUES "
            + ",".join(f"({_hex(rid)},'',{at},{size})" for rid, at in subs)
            + f"), new AS (INSERT INTO ledger_entries (idx, hashes, note, leaf) VALUES {rows}),"
            f" head AS (UPDATE ledger_head SET size = {size}, frontier = {edge}"
            f" WHERE id = 1 AND size = {first}{check} RETURNING 1)"
            " SELECT 1 / (SELECT count(*)::int FROM head)"  # fails unless the head was as read
             + self._commit_sql
        )
        done = [
            Appended(r.first_index, size, note, r.count)
            if isinstance(r, Appended) and not r.size
            else r
            for r in results
        ]
        return write, done, subs[0]

    def _send_requests_write(
        self,
        conn: psycopg.Connection[Any],
        write: str,
        results: list[Appended | LedgerError],
        first: tuple[bytes, int],
    ) -> list[Appended | LedgerError]:
        """_send_requests_write runs a requests write; _Lost if it certainly did not commit."""
        import psycopg

        try:
            self._write_and_commit(conn, write)
        except psycopg.Error as exc:
            if not _connection_lost(conn, exc):
                raise
            conn.close()
            if not self._request_stored(first, exc):
                raise _Lost(self._scrub(exc)) from exc
        return results

    def _request_stored(self, first: tuple[bytes, int], exc: BaseException) -> bool:
        """_request_stored tells whether a lost batch committed: its first request is stored.

        ``first`` is that request's id and the index it was to get; a row for
        the id at another index (or withdrawn) means the batch did not
        commit. It first takes the writers' lock, which the lost session
        holds until the server has finished with it, so the batch is no
        longer in progress when it looks (a transaction-level lock, let go
        however the look ends). Raises LedgerError when that cannot be known
        (the batch's outcome is unknown).
        """
        import psycopg

        rid, index = first
        conn = None
        try:
            conn = self._connection()
            rows = _tuple_results(
                conn.execute(
                    f"BEGIN; SELECT pg_advisory_xact_lock({WRITERS_LOCK}); "
                    + _STATUS.format(sid=_hex(rid))
                    + "; COMMIT"
                )
            )[1]
        except (psycopg.Error, LedgerError) as again:
            if conn is not None:
                self._rollback(conn)
            raise self._outcome_unknown(again) from exc
        return bool(rows) and rows[0][0] == index

    def withdraw_request(self, rid: bytes) -> Appended | None:
        """withdraw_request settles a request a sequencer may or may not have appended.

        Stores ``rid`` as withdrawn unless it is already stored (committed
        synchronously), so that no sequencer appends it afterwards; returns
        where it landed if it was appended first, else None (nothing was
        appended, nor will be).
        """
        with self._db("withdraw a request") as conn:
            results = _tuple_results(
                conn.execute(
                    "BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO ledger_submissions"
                    f" (id, hashes, first_idx) VALUES ({_hex(rid)}, '', -1)"
                    " ON CONFLICT (id) DO NOTHING; COMMIT; " + _STATUS.format(sid=_hex(rid))
                )
            )
        return self._settled(results[-1], 0)

    def _write_and_commit(self, conn: psycopg.Connection[Any], sql: str) -> None:
        """_write_and_commit stores the rows and the head and commits, in one round trip.

        The head row stays locked until the COMMIT, so every round trip (and
        every microsecond of client work) saved here is time other writers do
        not wait.
        """
        conn.execute(sql)

    def _outcome_unknown(self, again: BaseException) -> LedgerError:
        """_outcome_unknown: the error of a commit lost with its connection, not re-established."""
        return LedgerError(
            f"ledger {self.url}: the connection was lost while committing an append and"
            f" cannot be re-established, so whether it was appended is unknown:"
            f" {self._scrub(again)}"
        )

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
                raise self._outcome_unknown(again) from exc
            status = row[0] if row else None
            if status == "committed":  # committed synchronously: on disk
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
                    self._release(conn)
                    raise LedgerError(
                        f"ledger {self.url}: cannot reserve the next index: {self._scrub(exc)}"
                    ) from exc
            try:
                yield self._reserved[0]
            finally:
                self._reserved = None
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    self._release(conn)

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
