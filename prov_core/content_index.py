"""The content index: which signed records cover which bytes, and where snapshots are.

``$PROVGATE_HOME/index.sqlite`` (SQLite, WAL; on a home whose ledger is on
PostgreSQL, the tables ``content_*`` of that database) holds two lookups that
the ledger, being append-only and keyed by position, cannot answer quickly::

    content    (blake3 HEX64, log_index INT, envelope_sha256 HEX64, predicate_type TEXT)
               one row per file BLAKE3 per record whose digests cover it
    snapshots  (scheme TEXT, repository TEXT, commit_id TEXT,
                log_index INT, envelope_sha256 HEX64)
               the snapshot record of each commit

The index is a *locator*, never evidence: every row names a ledger entry by
its log index AND the SHA-256 of its envelope bytes, and whoever follows a row
reads the entry from the ledger, checks that hash, and verifies the signature
there. A wrong or stale row can therefore make a lookup miss, but cannot make
an unsigned or altered record pass.

Two writers fill ``content``:

- ingest writes a row for every file it read right after its ledger append
  (the per-file digests are not in the record; two databases cannot share one
  transaction): a crash between the two leaves a record the index does not
  point at, which a snapshot then lists as ``uncovered`` — the safe side;
- step outputs are NOT written by :func:`~prov_core.step.record_step` (a
  second transaction per step would cost as much as the append itself): a
  step record carries each output's BLAKE3 in its byproducts, so
  :meth:`ContentIndex.catch_up` reads them from the ledger entries appended
  since it last ran (``meta.steps_indexed_to``), and every lookup given the
  ledger (``covering(..., ledger=...)``) catches up first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from prov_core._index_db import IndexDatabase
from prov_core.errors import InputError

if TYPE_CHECKING:
    from prov_core.ledger.base import Ledger

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "ContentIndex", "RecordRef"]

SCHEMA_NAME: Final = "provgate-index"
"""SCHEMA_NAME marks a provgate content index (``meta.schema``)."""
SCHEMA_VERSION: Final = 1
"""SCHEMA_VERSION is the ``meta.version`` this code reads and writes."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS content (blake3 TEXT NOT NULL, log_index INTEGER NOT NULL,"
    " envelope_sha256 TEXT NOT NULL, predicate_type TEXT NOT NULL,"
    " PRIMARY KEY (blake3, log_index)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS snapshots (scheme TEXT NOT NULL, repository TEXT NOT NULL,"
    " commit_id TEXT NOT NULL, log_index INTEGER NOT NULL, envelope_sha256 TEXT NOT NULL,"
    " PRIMARY KEY (scheme, repository, commit_id)) WITHOUT ROWID",
)
# PostgreSQL: the same tables, in one step (tables content_*).
_MIGRATIONS = ((*_TABLES, f"INSERT INTO meta (key, value) VALUES ('schema', '{SCHEMA_NAME}')"),)
_UPSERT_CONTENT = (
    "INSERT INTO content (blake3, log_index, envelope_sha256, predicate_type) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (blake3, log_index) DO UPDATE"
    " SET envelope_sha256 = excluded.envelope_sha256, predicate_type = excluded.predicate_type"
)
BATCH: Final = 2000
"""BATCH is how many ledger entries one catch-up transaction reads."""


@dataclass(frozen=True, order=True)
class RecordRef:
    """RecordRef locates a signed record: its log index and the SHA-256 of its envelope."""

    log_index: int
    envelope_sha256: str
    predicate_type: str = ""


class ContentIndex(IndexDatabase):
    """ContentIndex is the index described in the module docstring.

    Opened at a path (SQLite) or at the home's ``postgresql://`` URL (tables
    ``content_*`` beside the ledger's).
    """

    what = "content index"
    schema = SCHEMA_NAME
    version = SCHEMA_VERSION
    tables = _TABLES
    migrations = _MIGRATIONS
    prefix = "content_"

    def add_content(self, digests: Iterable[str], record: RecordRef) -> None:
        """add_content says that ``record`` covers every BLAKE3 (hex) in ``digests``."""
        _check_ref(record)
        rows = []
        for d in set(digests):
            if not isinstance(d, str) or not _HEX64.fullmatch(d):
                raise InputError(f"content digest {d!r} is not 64 lowercase hex characters")
            rows.append((d, record.log_index, record.envelope_sha256, record.predicate_type))
        with self._tx() as tx:
            tx.executemany(_UPSERT_CONTENT, rows)

    def catch_up(self, ledger: Ledger) -> int:
        """catch_up indexes the outputs of step records appended since its last run.

        Returns how many ledger entries it read. A step record (SLSA
        Provenance) names each output's BLAKE3 in
        ``runDetails.byproducts[*].annotations.blake3``; entries that are not
        step records, or that do not parse, add nothing (the index only
        locates records: the gate verifies whatever it finds).

        Each batch of up to :data:`BATCH` entries is one transaction that
        first locks the ``schema`` row of ``meta`` (PostgreSQL; SQLite's
        ``BEGIN IMMEDIATE`` already holds the file's write lock), so the
        catch-ups of many processes take turns and each starts where the
        last committed one stopped.
        """
        from prov_core.statement import SLSA_PROVENANCE_V1

        size = ledger.size()
        done = 0
        while True:
            with self._tx() as tx:
                self._take_turn(tx)
                start = self._meta_int(tx, "steps_indexed_to")
                if start >= size:
                    return done
                stop = min(size, start + BATCH)
                tx.executemany(
                    _UPSERT_CONTENT,
                    [
                        (b3, index, hashlib.sha256(leaf).hexdigest(), SLSA_PROVENANCE_V1)
                        for index, leaf in ledger.entries(start, stop)
                        for b3 in _step_outputs(leaf, SLSA_PROVENANCE_V1)
                    ],
                )
                self._set_meta(tx, "steps_indexed_to", str(stop))
                done += stop - start

    def covering(
        self, digests: Iterable[str], *, ledger: Ledger | None = None
    ) -> dict[str, list[RecordRef]]:
        """covering maps each BLAKE3 in ``digests`` to the records covering it, oldest first.

        Digests no record covers are absent from the result. Given the
        ledger, it first indexes step records appended since the last lookup
        (:meth:`catch_up`).
        """
        if ledger is not None:
            self.catch_up(ledger)
        wanted = sorted(set(digests))
        out: dict[str, list[RecordRef]] = {}
        with self._tx(write=False) as tx:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = tx.execute(
                    "SELECT blake3, log_index, envelope_sha256, predicate_type FROM content"
                    f" WHERE blake3 IN ({marks}) ORDER BY blake3, log_index",
                    chunk,
                ).fetchall()
                for b3, index, env, ptype in rows:
                    out.setdefault(str(b3), []).append(RecordRef(int(index), str(env), str(ptype)))
        return out

    def put_snapshot(self, scheme: str, repository: str, commit_id: str, record: RecordRef) -> None:
        """put_snapshot records that ``record`` is the snapshot record of the commit."""
        _check_ref(record)
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO snapshots (scheme, repository, commit_id, log_index, envelope_sha256)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scheme, repository, commit_id)"
                " DO UPDATE SET log_index = excluded.log_index,"
                " envelope_sha256 = excluded.envelope_sha256",
                (scheme, repository, commit_id, record.log_index, record.envelope_sha256),
            )

    def snapshot(self, scheme: str, repository: str, commit_id: str) -> RecordRef | None:
        """snapshot returns where the commit's snapshot record is, or None if not indexed."""
        with self._tx(write=False) as tx:
            row = tx.execute(
                "SELECT log_index, envelope_sha256 FROM snapshots"
                " WHERE scheme = ? AND repository = ? AND commit_id = ?",
                (scheme, repository, commit_id),
            ).fetchone()
        return None if row is None else RecordRef(int(row[0]), str(row[1]))


def _check_ref(record: RecordRef) -> None:
    if type(record.log_index) is not int or record.log_index < 0:
        raise InputError(f"log index {record.log_index!r} must be a non-negative integer")
    if not _HEX64.fullmatch(record.envelope_sha256):
        raise InputError(f"envelope sha256 {record.envelope_sha256!r} is not 64 hex characters")


def _step_outputs(leaf: bytes, step_type: str) -> list[str]:
    """_step_outputs returns the output BLAKE3s a step record's byproducts name, else []."""
    try:
        envelope: Any = json.loads(leaf)
        statement: Any = json.loads(base64.b64decode(envelope["payload"], validate=True))
        if statement.get("predicateType") != step_type:
            return []
        byproducts = statement["predicate"]["runDetails"].get("byproducts") or []
        found = [(b.get("annotations") or {}).get("blake3") for b in byproducts]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
    return [b3 for b3 in found if isinstance(b3, str) and _HEX64.fullmatch(b3)]
