"""The PostgreSQL ledger's schema: tables, procedures and the migrations that make them.

Version 2, tables prefixed ``ledger_`` so the lineage index and the snapshot
store's metadata can share the database::

    ledger_schema_migrations(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)
    ledger_meta(key TEXT PRIMARY KEY, value TEXT)      -- schema, origin
    ledger_entries(
        idx    BIGINT PRIMARY KEY,                     -- the log, 0-based
        hashes BYTEA NOT NULL,                         -- the subtrees leaf idx completes
        note   BYTEA,                                  -- checkpoint of size idx + 1, or NULL
        leaf   BYTEA NOT NULL                          -- the entry, as appended
    )
    ledger_head(id = 1, size BIGINT, frontier BYTEA)   -- the committed head, one row
    ledger_submissions(                                -- appends waiting to be integrated
        id        BYTEA PRIMARY KEY,                   -- 16 random bytes chosen by the writer
        seq       BIGINT IDENTITY,                     -- arrival order
        hashes    BYTEA,                               -- the leaf hashes, 32 bytes each
        leaves    BYTEA[],                             -- the entries; NULL once integrated
        first_idx BIGINT,                              -- NULL pending, -1 withdrawn, or the
        size      BIGINT                               -- index and checkpoint size it got
    )

``ledger_entries`` is laid out exactly as the SQLite backend's ``entries``
(see :mod:`~prov_core.ledger.sqlite`): subtree ``(L, n)`` is bytes
``32 L .. 32 L + 31`` of ``hashes`` in row ``((n + 1) << L) - 1``, and the
last row of each integrated batch carries the checkpoint signed for the new
size. ``ledger_head`` is the committed size and the right edge of the tree
(its complete subtrees' hashes, largest first, concatenated;
:class:`~prov_core.ledger.merkle.Frontier`).

A submission row is kept after it is integrated (its leaves cleared), so that
a writer retrying after a lost connection finds it and cannot store its
entries twice. The sequencer stores each request it appends as such a row
(never pending), and a writer that got no answer from it stores its
request's id as withdrawn (first_idx -1) unless it is already there. Two
procedures, ``ledger_submit`` and ``ledger_integrate``, carry the group append
(:mod:`~prov_core.ledger.postgres` explains it); :data:`WRITERS_LOCK` is the
advisory lock key that serializes the writers.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_NAME", "SCHEMA_VERSION", "WRITERS_LOCK"]

SCHEMA_NAME = "provgate-ledger"
"""SCHEMA_NAME is the ``ledger_meta.schema`` value that marks a provgate ledger."""

WRITERS_LOCK = 0x70726F76_68656164  # "provhead"
"""WRITERS_LOCK is the advisory lock key (bigint) the log's writers take, session-level."""
# ledger_submit(...): a writer's append, in one call. It commits the
# submission (unless ``leaves`` is NULL: already stored), then waits for the
# writers' lock, a session-level advisory lock (no transaction, no xid,
# nothing written). Whoever gets the lock checks its submission: if another
# writer integrated it meanwhile, it releases the lock at once and returns
# where the submission landed (out_first, out_size, out_note); otherwise it
# leads: it keeps the lock and returns the head (out_size, out_frontier) and
# up to ``batch`` pending submissions in arrival order (out_ids, out_hashes).
# So waiting writers hand the lock on inside the server, without a round trip
# to their clients. A procedure, so that it can commit the submission before
# it waits (CALL it on its own, outside a transaction).
_SUBMIT_PROCEDURE = f"""
CREATE PROCEDURE ledger_submit(submission BYTEA, leaf_hashes BYTEA, leaves BYTEA[],
    batch INTEGER, INOUT out_first BIGINT, INOUT out_size BIGINT, INOUT out_note BYTEA,
    INOUT out_frontier BYTEA, INOUT out_ids BYTEA[], INOUT out_hashes BYTEA[])
LANGUAGE plpgsql AS $$
BEGIN
    IF leaves IS NOT NULL THEN
        INSERT INTO ledger_submissions (id, hashes, leaves)
            VALUES (submission, leaf_hashes, leaves) ON CONFLICT (id) DO NOTHING;
        COMMIT;
    END IF;
    PERFORM pg_advisory_lock({WRITERS_LOCK});
    SELECT s.first_idx, s.size INTO out_first, out_size
        FROM ledger_submissions s WHERE s.id = submission;
    IF NOT FOUND OR out_first IS NOT NULL THEN
        PERFORM pg_advisory_unlock({WRITERS_LOCK});
        SELECT e.note INTO out_note FROM ledger_entries e WHERE e.idx = out_size - 1;
        RETURN;
    END IF;
    SELECT h.size, h.frontier INTO out_size, out_frontier FROM ledger_head h WHERE h.id = 1;
    SELECT array_agg(q.id ORDER BY q.seq), array_agg(q.hashes ORDER BY q.seq)
        INTO out_ids, out_hashes
        FROM (SELECT s.id, s.hashes, s.seq FROM ledger_submissions s
              WHERE s.first_idx IS NULL ORDER BY s.seq LIMIT batch) q;
END $$
"""
# ledger_integrate(...): the leader's write. One transaction moves the head
# from old_size (or fails: another writer moved it) and integrates the
# submissions ``sids`` at ``firsts``: their leaves become entries with the
# stored subtree hashes ``entry_hashes`` (one per new entry, in index order),
# the last one carrying the checkpoint ``note``. A submission withdrawn since
# the leader read it fails the whole write (nothing half-done; the leader
# starts over). It commits synchronously, so nothing is visible before it is
# on disk, and then releases the writers' lock. CALL it on its own.
_INTEGRATE_PROCEDURE = f"""
CREATE PROCEDURE ledger_integrate(old_size BIGINT, new_size BIGINT, new_frontier BYTEA,
    note BYTEA, sids BYTEA[], firsts BIGINT[], entry_hashes BYTEA[])
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    UPDATE ledger_head h SET size = new_size, frontier = new_frontier
        WHERE h.id = 1 AND h.size = old_size;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the log head moved from size % while integrating', old_size
            USING ERRCODE = 'PVG01';
    END IF;
    INSERT INTO ledger_entries (idx, hashes, note, leaf)
        SELECT v.f + l.k - 1, entry_hashes[v.f + l.k - old_size],
               CASE WHEN v.f + l.k = new_size THEN note END, l.leaf
        FROM unnest(sids, firsts) AS v(sid, f)
        JOIN ledger_submissions s ON s.id = v.sid AND s.first_idx IS NULL
        CROSS JOIN LATERAL unnest(s.leaves) WITH ORDINALITY AS l(leaf, k);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> new_size - old_size THEN
        RAISE EXCEPTION 'a submission was withdrawn while integrating' USING ERRCODE = 'PVG02';
    END IF;
    UPDATE ledger_submissions s SET first_idx = v.f, size = new_size, hashes = '', leaves = NULL
        FROM unnest(sids, firsts) AS v(sid, f)
        WHERE s.id = v.sid AND s.first_idx IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> cardinality(sids) THEN
        RAISE EXCEPTION 'a submission was withdrawn while integrating' USING ERRCODE = 'PVG02';
    END IF;
    SET LOCAL synchronous_commit = on;
    COMMIT;
    PERFORM pg_advisory_unlock({WRITERS_LOCK});
END $$
"""

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
    # 2: submissions, the appends waiting to be integrated (group append).
    (
        "CREATE TABLE ledger_submissions (id BYTEA PRIMARY KEY,"
        " seq BIGINT GENERATED ALWAYS AS IDENTITY, hashes BYTEA NOT NULL, leaves BYTEA[],"
        " first_idx BIGINT, size BIGINT,"
        " CHECK (leaves IS NULL OR (cardinality(leaves) > 0"
        " AND length(hashes) = 32 * cardinality(leaves)"
        " AND array_position(leaves, NULL) IS NULL)))",
        "CREATE INDEX ledger_submissions_pending ON ledger_submissions (seq)"
        " WHERE first_idx IS NULL",
        _SUBMIT_PROCEDURE,
        _INTEGRATE_PROCEDURE,
    ),
)
"""MIGRATIONS lists the schema steps in order: step ``v`` (1-based) makes version ``v``."""
SCHEMA_VERSION = len(MIGRATIONS)
"""SCHEMA_VERSION is the newest schema version this code reads and writes."""
