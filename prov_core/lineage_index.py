"""The lineage index: which record was made from which, as an edge table walks can recurse over.

``$PROVGATE_HOME/lineage.sqlite`` (SQLite, WAL; on a home whose ledger is on
PostgreSQL, the tables ``lineage_*`` of that database) is a *cache* of the
edges the signed records state, built from the ledger so that an upstream or
downstream walk is one recursive CTE over indexed rows instead of a ledger
scan::

    nodes    (log_index INT PK, envelope_sha256 HEX64, predicate_type TEXT,
              kind TEXT, keyid TEXT, name TEXT, source_uri TEXT?, license TEXT?)
    edges    (child INT, parent INT, kind TEXT, via TEXT?)   child was made from parent
             PRIMARY KEY (child, parent, kind); INDEX (parent, child)
    digests  (digest HEX64, log_index INT, role TEXT, algo TEXT)
             which record names which digest, and as what (see ROLES)
    commits  (store TEXT, repository TEXT, commit_id TEXT, log_index INT)
             the snapshot record of each commit
    attempts (system TEXT, instance TEXT, attempt INT?, log_index INT)
             the records of one task instance's tries (see below)
    meta     schema, version, origin, indexed_to (entries [0, indexed_to) are indexed)

How edges are found in each kind of record (:func:`parse_record`, shared with
:func:`prov_core.lineage.verify_chain` so that the index and the verifier read
records the same way):

- transform/training step (SLSA Provenance v1): each
  ``resolvedDependencies`` entry with ``annotations.logIndex`` is an ``input``
  edge to that record (``via`` the envelope SHA-256 it names); an entry named
  only by ``annotations.blake3`` is an ``input`` edge to every earlier record
  that produced those bytes: a step whose ``byproducts`` name it, an ingest
  whose manifest root is it, or an ingest the content index says covers it
  (``via`` the BLAKE3). Training steps (``buildType`` TRAINING_BUILD_TYPE) are
  kind ``training``: their outputs are *models*.
- snapshot: each ``derivedFrom`` descriptor with a log index is a
  ``derived-from`` edge, and each log index an object's ``records`` names
  but ``derivedFrom`` does not is a ``contains`` edge.
  A step (or an ingest or snapshot record, in its predicate's
  ``orchestrator``) whose ``orchestrator`` names a ``previous_attempt`` (``log_index``
  and ``envelope_sha256`` of the record of the try before it) has a
  ``retry-of`` edge to that record; its ``name`` (the orchestrator) and
  ``instance`` (a JSON array naming the task instance across its tries, e.g.
  Airflow's ``[dag_id, task_id, run_id, map_index]``) with ``attempt`` file
  it under ``attempts``, which :meth:`LineageIndex.attempts` reads.
- gate decision (SLSA VSA): each ``inputAttestations`` entry is a ``verified``
  edge.
- federated update (kind ``federated-update``): each ``data[].record`` is an
  ``input`` edge to the client's snapshot record; the update's BLAKE3 is
  the record's ``output``. Any other record (inference, future kinds): every descriptor
  carrying ``annotations.logIndex`` is a ``refers`` edge.

Catching up (:meth:`LineageIndex.catch_up`) reads the entries appended since
``indexed_to`` in batches, each batch and its new ``indexed_to`` in one
transaction: a crash loses at most the batch, which the next catch-up redoes.
Each batch first locks the ``meta`` row ``schema`` (PostgreSQL; SQLite's write
lock does the same), so catch-ups of many processes take turns.
If the entry before ``indexed_to`` no longer hashes to what the index holds
(another ledger, a rebuilt home), the index is dropped and rebuilt.

The index is never evidence: a tampered ledger row may be indexed as it
reads. Whoever needs the truth (``verify_chain``) re-reads every record from
the ledger, re-derives its edges and verifies signature, trust and inclusion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from prov_core._index_db import IndexDatabase
from prov_core.errors import InputError

if TYPE_CHECKING:
    from prov_core._sql import Dialect, Tx
    from prov_core.content_index import ContentIndex
    from prov_core.ledger.base import Ledger

__all__ = [
    "KINDS",
    "ROLES",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Attempt",
    "Edge",
    "LineageIndex",
    "Node",
    "ParsedRecord",
    "Ref",
    "instance_key",
    "parse_record",
]

SCHEMA_NAME: Final = "provgate-lineage"
"""SCHEMA_NAME marks a provgate lineage index (``meta.schema``)."""
SCHEMA_VERSION: Final = 2
"""SCHEMA_VERSION is the ``meta.version`` this code reads and writes (2: ``attempts``).

An index of an older version is emptied and rebuilt from the ledger when opened."""
BATCH: Final = 2000
"""BATCH is how many ledger entries one catch-up transaction indexes."""

KINDS: Final = (
    "ingest",
    "transform",
    "training",
    "snapshot",
    "gate",
    "inference",
    "key-event",
    "federated-update",
    "other",
    "malformed",
)
"""KINDS are the node kinds; a *model* is the output of a ``training`` node."""
ROLES: Final = ("output", "subject", "manifest", "object", "envelope")
"""ROLES: ``output`` the record made those bytes (step byproduct, ingest manifest root);
``subject`` an in-toto subject; ``manifest`` a snapshot's manifest root; ``object`` an
object a snapshot holds; ``envelope`` the SHA-256 of the record's own envelope."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TABLES_V1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS nodes (log_index INTEGER PRIMARY KEY,"
    " envelope_sha256 TEXT NOT NULL, predicate_type TEXT NOT NULL, kind TEXT NOT NULL,"
    " keyid TEXT NOT NULL, name TEXT NOT NULL, source_uri TEXT, license TEXT)",
    "CREATE INDEX IF NOT EXISTS nodes_source ON nodes (source_uri) WHERE source_uri IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS nodes_license ON nodes (license) WHERE license IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS nodes_keyid ON nodes (keyid)",
    "CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind)",
    "CREATE TABLE IF NOT EXISTS edges (child INTEGER NOT NULL, parent INTEGER NOT NULL,"
    " kind TEXT NOT NULL, via TEXT, PRIMARY KEY (child, parent, kind)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS edges_parent ON edges (parent, child)",
    "CREATE TABLE IF NOT EXISTS digests (digest TEXT NOT NULL, log_index INTEGER NOT NULL,"
    " role TEXT NOT NULL, algo TEXT NOT NULL, PRIMARY KEY (digest, log_index, role))"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS commits (store TEXT NOT NULL, repository TEXT NOT NULL,"
    " commit_id TEXT NOT NULL, log_index INTEGER NOT NULL,"
    " PRIMARY KEY (store, repository, commit_id, log_index)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS commits_id ON commits (commit_id)",
)
_TABLES_V2 = (
    "CREATE TABLE IF NOT EXISTS attempts (system TEXT NOT NULL, instance TEXT NOT NULL,"
    " attempt INTEGER, log_index INTEGER NOT NULL,"
    " PRIMARY KEY (system, instance, log_index)) WITHOUT ROWID",
)
_DROP = ("nodes", "edges", "digests", "commits", "attempts")
_EMPTY = (
    *(f"DELETE FROM {table}" for table in _DROP),
    "DELETE FROM meta WHERE key = 'indexed_to'",
)
# PostgreSQL: the same tables, one step per version; a new version empties the
# cache (the next catch-up re-reads the ledger), as a SQLite file is rebuilt.
_MIGRATIONS = (
    (*_TABLES_V1, f"INSERT INTO meta (key, value) VALUES ('schema', '{SCHEMA_NAME}')"),
    (*_TABLES_V2, *_EMPTY),
)
_UPSERT_NODE = (
    "INSERT INTO nodes (log_index, envelope_sha256, predicate_type, kind, keyid, name,"
    " source_uri, license) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_index) DO UPDATE"
    " SET envelope_sha256 = excluded.envelope_sha256, predicate_type = excluded.predicate_type,"
    " kind = excluded.kind, keyid = excluded.keyid, name = excluded.name,"
    " source_uri = excluded.source_uri, license = excluded.license"
)
_NODE_COLUMNS = (
    "n.log_index, n.envelope_sha256, n.predicate_type, n.kind, n.keyid, n.name,"
    " n.source_uri, n.license"
)


def _walk(dialect: Dialect, *, down: bool) -> str:
    """_walk is the recursive walk from the roots of one parameter (:meth:`Dialect.ints`).

    UNION (not UNION ALL) keeps each node once, so a walk ends on cycles and
    visits a shared ancestor once however many paths lead to it.
    """
    step = (
        "e.child FROM edges e JOIN walk ON e.parent = walk.n"
        if down
        else "e.parent FROM edges e JOIN walk ON e.child = walk.n"
    )
    return f"WITH RECURSIVE walk(n) AS (SELECT value FROM {dialect.ints('r')} UNION SELECT {step})"


@dataclass(frozen=True)
class Ref:
    """Ref is an edge a record states: to ``parent``, of ``kind``, naming it by ``sha256``.

    ``sha256`` is the envelope SHA-256 the record signs for its parent, or None
    when it names the parent by log index alone (an object's ``records``).
    """

    parent: int
    kind: str
    sha256: str | None
    label: str = ""


@dataclass(frozen=True)
class ParsedRecord:
    """ParsedRecord is what one ledger entry says about lineage (read, not verified)."""

    log_index: int
    envelope_sha256: str
    predicate_type: str
    kind: str
    keyid: str
    name: str
    source_uri: str | None = None
    license: str | None = None
    refs: tuple[Ref, ...] = ()
    content_inputs: tuple[tuple[str, str], ...] = ()  # (blake3, label)
    digests: tuple[tuple[str, str, str], ...] = ()  # (digest, role, algo)
    commit: tuple[str, str, str] | None = None  # (store, repository, commit id)
    attempt: tuple[str, str, int | None] | None = None  # (system, instance key, attempt)
    statement: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    """Node is one indexed record: its place in the log and what queries filter on."""

    log_index: int
    envelope_sha256: str
    predicate_type: str
    kind: str
    keyid: str
    name: str
    source_uri: str | None = None
    license: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_index": self.log_index,
            "kind": self.kind,
            "name": self.name,
            "predicate_type": self.predicate_type,
            "envelope_sha256": self.envelope_sha256,
            "keyid": self.keyid,
            "source_uri": self.source_uri,
            "license": self.license,
        }


@dataclass(frozen=True, order=True)
class Edge:
    """Edge says record ``child`` was made from (or refers to) record ``parent``."""

    child: int
    parent: int
    kind: str
    via: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"child": self.child, "parent": self.parent, "kind": self.kind, "via": self.via}


@dataclass(frozen=True, order=True)
class Attempt:
    """Attempt is the record of one try of a task instance (``attempt`` None if unnumbered)."""

    log_index: int
    envelope_sha256: str
    attempt: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_index": self.log_index,
            "envelope_sha256": self.envelope_sha256,
            "attempt": self.attempt,
        }


def instance_key(parts: Sequence[str | int]) -> str:
    """instance_key is the text a task instance is filed under: its parts as compact JSON.

    ``["dag", "task", "run", -1]`` becomes ``'["dag","task","run",-1]'``: unambiguous
    whatever the parts contain. Raises :class:`InputError` for an empty sequence or
    a part that is neither a string nor an int.
    """
    if isinstance(parts, str) or not parts:
        raise InputError(f"a task instance is a non-empty list of strings and ints, not {parts!r}")
    for p in parts:
        if isinstance(p, bool) or not isinstance(p, str | int):
            raise InputError(f"task instance part {p!r} is neither a string nor an int")
    return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------
# Reading one record


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _hex64(value: Any) -> str | None:
    return value if isinstance(value, str) and _HEX64.fullmatch(value) else None


def _index_of(descriptor: Any) -> int | None:
    i = _dict(_dict(descriptor).get("annotations")).get("logIndex")
    return i if type(i) is int and i >= 0 else None


def _descriptor_ref(d: Any, kind: str) -> Ref | None:
    i = _index_of(d)
    if i is None:
        return None
    sha = _hex64(_dict(_dict(d).get("digest")).get("sha256"))
    label = _dict(d).get("name") or _dict(d).get("uri") or f"attestation:{i}"
    return Ref(i, kind, sha, str(label))


def _attempt_of(orchestrator: dict[str, Any]) -> tuple[str, str, int | None] | None:
    """_attempt_of files a step under (system, instance key, attempt), if it names both."""
    system, parts = orchestrator.get("name"), orchestrator.get("instance")
    if not isinstance(system, str) or not system or not isinstance(parts, list):
        return None
    try:
        key = instance_key(parts)
    except InputError:
        return None
    attempt = orchestrator.get("attempt")
    return system, key, attempt if type(attempt) is int else None


def _retry_ref(orchestrator: dict[str, Any]) -> Ref | None:
    """_retry_ref is the ``retry-of`` edge to the record of the try before, if named."""
    prev = _dict(orchestrator.get("previous_attempt"))
    i, sha = prev.get("log_index"), _hex64(prev.get("envelope_sha256"))
    if type(i) is not int or i < 0 or sha is None:
        return None
    return Ref(i, "retry-of", sha, f"previous attempt (record {i})")


def _scan_refs(value: Any, out: list[Ref]) -> None:
    """_scan_refs finds every descriptor with ``annotations.logIndex`` in a predicate."""
    if isinstance(value, dict):
        ref = _descriptor_ref(value, "refers")
        if ref is not None:
            out.append(ref)
            return
        for v in value.values():
            _scan_refs(v, out)
    elif isinstance(value, list):
        for v in value:
            _scan_refs(v, out)


def parse_record(log_index: int, leaf: bytes) -> ParsedRecord:
    """parse_record reads what ledger entry ``log_index`` states about lineage.

    Never raises on bad content: an entry that is not a DSSE envelope of an
    in-toto statement is a ``malformed`` node without edges. Nothing is
    verified here.
    """
    from prov_core.statement import (
        FEDERATED_UPDATE_V1,
        INFERENCE_V1,
        INGEST_V1,
        KEY_EVENT_V1,
        SLSA_PROVENANCE_V1,
        SLSA_VSA_V1,
        SNAPSHOT_V1,
    )
    from prov_core.step import TRAINING_BUILD_TYPE

    sha = hashlib.sha256(leaf).hexdigest()
    envelope_digest = ((sha, "envelope", "sha256"),)
    try:
        envelope: Any = json.loads(leaf)
        statement: Any = json.loads(base64.b64decode(envelope["payload"], validate=True))
        sigs = _list(envelope.get("signatures"))
        keyid = str(_dict(sigs[0]).get("keyid", "")) if sigs else ""
        ptype = statement["predicateType"]
        predicate = statement["predicate"]
        if not isinstance(ptype, str) or not isinstance(predicate, dict):
            raise TypeError("predicateType or predicate")
    except (ValueError, TypeError, KeyError, AttributeError):
        return ParsedRecord(log_index, sha, "", "malformed", "", "", digests=envelope_digest)
    digests: list[tuple[str, str, str]] = list(envelope_digest)
    for s in _list(statement.get("subject")):
        d = _hex64(_dict(_dict(s).get("digest")).get("sha256"))
        if d:
            digests.append((d, "subject", "sha256"))
    refs: list[Ref] = []
    content: list[tuple[str, str]] = []
    common: dict[str, Any] = {
        "log_index": log_index,
        "envelope_sha256": sha,
        "predicate_type": ptype,
        "keyid": keyid,
        "statement": statement,
    }
    if ptype == INGEST_V1:
        source = _dict(predicate.get("source")).get("uri")
        lic = _dict(predicate.get("license")).get("spdx")
        root = _hex64(_dict(predicate.get("manifest")).get("root"))
        if root:
            digests.append((root, "output", "blake3"))
        orchestrator = _dict(predicate.get("orchestrator"))
        retry = _retry_ref(orchestrator)
        return ParsedRecord(
            kind="ingest",
            name=str(source or f"ingest {log_index}"),
            source_uri=source if isinstance(source, str) else None,
            license=lic if isinstance(lic, str) else None,
            refs=() if retry is None else (retry,),
            digests=tuple(digests),
            attempt=_attempt_of(orchestrator),
            **common,
        )
    if ptype == SLSA_PROVENANCE_V1:
        build = _dict(predicate.get("buildDefinition"))
        kind = "training" if build.get("buildType") == TRAINING_BUILD_TYPE else "transform"
        step = _dict(build.get("externalParameters")).get("step")
        for dep in _list(build.get("resolvedDependencies")):
            ref = _descriptor_ref(dep, "input")
            if ref is not None:
                refs.append(ref)
                continue
            b3 = _hex64(_dict(_dict(dep).get("annotations")).get("blake3"))
            if b3:
                content.append((b3, str(_dict(dep).get("name") or _dict(dep).get("uri") or b3)))
        for b in _list(_dict(predicate.get("runDetails")).get("byproducts")):
            b3 = _hex64(_dict(_dict(b).get("annotations")).get("blake3"))
            if b3:
                digests.append((b3, "output", "blake3"))
        orchestrator = _dict(_dict(build.get("internalParameters")).get("orchestrator"))
        retry = _retry_ref(orchestrator)
        if retry is not None:
            refs.append(retry)
        return ParsedRecord(
            kind=kind,
            name=str(step) if isinstance(step, str) and step else f"step {log_index}",
            refs=tuple(refs),
            content_inputs=tuple(content),
            digests=tuple(digests),
            attempt=_attempt_of(orchestrator),
            **common,
        )
    if ptype == SNAPSHOT_V1:
        named: set[int] = set()
        for d in _list(predicate.get("derivedFrom")):
            ref = _descriptor_ref(d, "derived-from")
            if ref is not None and ref.parent not in named:
                named.add(ref.parent)
                refs.append(ref)
        for o in _list(predicate.get("objects")):
            b3 = _hex64(_dict(o).get("blake3"))
            if b3:
                digests.append((b3, "object", "blake3"))
            for i in _list(_dict(o).get("records")):
                if type(i) is int and i >= 0 and i not in named:
                    named.add(i)
                    refs.append(Ref(i, "contains", None, str(_dict(o).get("path", ""))))
        root = _hex64(_dict(predicate.get("manifest")).get("root"))
        if root:
            digests.append((root, "manifest", "blake3"))
        store, repo, commit = (
            predicate.get("store"),
            predicate.get("repository"),
            predicate.get("commitId"),
        )
        pinned = None
        if isinstance(store, str) and isinstance(repo, str) and isinstance(commit, str):
            pinned = (store, repo, commit)
        orchestrator = _dict(predicate.get("orchestrator"))
        retry = _retry_ref(orchestrator)
        if retry is not None:
            refs.append(retry)
        return ParsedRecord(
            kind="snapshot",
            name=f"{repo}@{commit}" if pinned else f"snapshot {log_index}",
            refs=tuple(refs),
            digests=tuple(digests),
            commit=pinned,
            attempt=_attempt_of(orchestrator),
            **common,
        )
    if ptype == SLSA_VSA_V1:
        for d in _list(predicate.get("inputAttestations")):
            ref = _descriptor_ref(d, "verified")
            if ref is not None:
                refs.append(ref)
        result = predicate.get("verificationResult", "?")
        return ParsedRecord(
            kind="gate",
            name=f"gate {result}: {predicate.get('resourceUri', '')}".rstrip(": "),
            refs=tuple(refs),
            digests=tuple(digests),
            **common,
        )
    if ptype == FEDERATED_UPDATE_V1:
        for d in _list(predicate.get("data")):
            ref = _descriptor_ref(_dict(d).get("record"), "input")
            if ref is not None:
                refs.append(ref)
        update = _hex64(_dict(_dict(predicate.get("update")).get("digest")).get("blake3"))
        if update:
            digests.append((update, "output", "blake3"))
        client = _dict(predicate.get("client")).get("id")
        return ParsedRecord(
            kind="federated-update",
            name=f"{predicate.get('federation')}/round-{predicate.get('round')}/{client}",
            refs=tuple(refs),
            digests=tuple(digests),
            **common,
        )
    if ptype == KEY_EVENT_V1:
        name = f"key {predicate.get('event', '?')} {predicate.get('keyid', '')}".strip()
        return ParsedRecord(kind="key-event", name=name, digests=tuple(digests), **common)
    _scan_refs(predicate, refs)
    kind = "inference" if ptype == INFERENCE_V1 else "other"
    return ParsedRecord(
        kind=kind,
        name=f"{kind} {log_index}",
        refs=tuple(dict.fromkeys(refs)),
        digests=tuple(digests),
        **common,
    )


# --------------------------------------------------------------------------
# The index


class LineageIndex(IndexDatabase):
    """LineageIndex is the edge index described in the module docstring.

    Opened at a path (SQLite) or at the home's ``postgresql://`` URL (tables
    ``lineage_*`` beside the ledger's).
    """

    rebuildable = True
    what = "lineage index"
    schema = SCHEMA_NAME
    version = SCHEMA_VERSION
    tables = (*_TABLES_V1, *_TABLES_V2)
    migrations = _MIGRATIONS
    prefix = "lineage_"
    pragmas = ("PRAGMA mmap_size = 268435456",)  # walks touch pages all over the file
    stale_hint = "; delete it and it is rebuilt from the ledger"

    # -- building ------------------------------------------------------------

    def indexed_to(self) -> int:
        """indexed_to is the number of ledger entries indexed so far."""
        with self._tx(write=False) as tx:
            return self._meta_int(tx, "indexed_to")

    def catch_up(self, ledger: Ledger, content: ContentIndex | None = None) -> int:
        """catch_up indexes the entries appended since the last run; returns how many it read.

        ``content`` (the home's content index) resolves artifact inputs named
        by BLAKE3 to the ingest records covering those bytes; without it only
        step outputs and single-file ingests resolve them.
        """
        size = ledger.size()
        done = 0
        while True:
            with self._tx() as tx:
                start = self._check_origin(tx, ledger)
                if start >= size:
                    return done
                stop = min(size, start + BATCH)
                for i, leaf in ledger.entries(start, stop):
                    self._add(tx, parse_record(i, leaf), content)
                self._set_meta(tx, "indexed_to", str(stop))
                done += stop - start

    def _check_origin(self, tx: Tx, ledger: Ledger) -> int:
        """_check_origin returns ``indexed_to``, after dropping an index of another log.

        It first locks the ``schema`` row of ``meta`` (PostgreSQL; SQLite's
        ``BEGIN IMMEDIATE`` already holds the file's write lock), so catch-ups
        of many processes run one batch at a time, each starting where the
        last committed one stopped: no entry is indexed twice at once, and a
        record is never indexed before the records it was made from.
        """
        self._take_turn(tx)
        start = self._meta_int(tx, "indexed_to")
        origin = tx.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        stale = origin is not None and origin[0] != ledger.origin
        if not stale and start > 0:
            if start > ledger.size():
                stale = True
            else:
                row = tx.execute(
                    "SELECT envelope_sha256 FROM nodes WHERE log_index = ?", (start - 1,)
                ).fetchone()
                last = hashlib.sha256(ledger.entry(start - 1)).hexdigest()
                stale = row is None or row[0] != last
        if stale:
            for ddl in _EMPTY:
                tx.execute(ddl)
            start = 0
        self._set_meta(tx, "origin", ledger.origin)
        return start

    def _add(self, tx: Tx, rec: ParsedRecord, content: ContentIndex | None) -> None:
        text = tx.dialect.text
        tx.execute(
            _UPSERT_NODE,
            (
                rec.log_index,
                rec.envelope_sha256,
                text(rec.predicate_type),
                rec.kind,
                text(rec.keyid),
                text(rec.name),
                text(rec.source_uri),
                text(rec.license),
            ),
        )
        edges = [
            (rec.log_index, r.parent, r.kind, r.sha256)
            for r in rec.refs
            if r.parent != rec.log_index
        ]
        for b3, _ in rec.content_inputs:
            for parent in self._producers(tx, b3, content, before=rec.log_index):
                edges.append((rec.log_index, parent, "input", b3))
        tx.executemany("INSERT INTO edges VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", edges)
        tx.executemany(
            "INSERT INTO digests VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(d, rec.log_index, role, algo) for d, role, algo in rec.digests],
        )
        if rec.commit is not None:
            tx.execute(
                "INSERT INTO commits VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*(text(c) for c in rec.commit), rec.log_index),
            )
        if rec.attempt is not None:
            system, instance, attempt = rec.attempt
            tx.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (text(system), text(instance), attempt, rec.log_index),
            )

    @staticmethod
    def _producers(
        tx: Tx,
        b3: str,
        content: ContentIndex | None,
        *,
        before: int,
    ) -> list[int]:
        """_producers are the records before ``before`` that made or ingested bytes ``b3``."""
        found = {
            int(r[0])
            for r in tx.execute(
                "SELECT log_index FROM digests WHERE digest = ? AND role = 'output'"
                " AND log_index < ?",
                (b3, before),
            )
        }
        if content is not None:
            for ref in content.covering([b3]).get(b3, []):
                if ref.log_index < before:
                    found.add(ref.log_index)
        return sorted(found)

    # -- queries ---------------------------------------------------------------

    def records_naming(self, digest: str, *, algo: str | None = None) -> dict[int, set[str]]:
        """records_naming maps each record that names ``digest`` to the roles it names it in."""
        sql = "SELECT log_index, role FROM digests WHERE digest = ?"
        args: list[Any] = [digest]
        if algo is not None:
            sql += " AND algo = ?"
            args.append(algo)
        out: dict[int, set[str]] = {}
        with self._tx(write=False) as tx:
            for i, role in tx.execute(sql, args):
                out.setdefault(int(i), set()).add(str(role))
        return out

    def snapshot_records(self, store: str, repository: str, commit_id: str) -> list[int]:
        """snapshot_records are the log indices of the snapshot records of a commit."""
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT log_index FROM commits WHERE store = ? AND repository = ?"
                " AND commit_id = ? ORDER BY log_index",
                (store, repository, commit_id),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def attempts(self, system: str, instance: Sequence[str | int]) -> list[Attempt]:
        """attempts are the records of every try of one task instance, oldest first.

        ``system`` is the orchestrator's name (``airflow``, ``prefect``, ...) and
        ``instance`` the parts its adapter files the instance under (:func:`instance_key`).
        Read from the index, not verified: check an entry's envelope SHA-256 before
        relying on it (:func:`prov_core.nodes.previous_attempt` does).
        """
        key = instance_key(instance)
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT a.log_index, n.envelope_sha256, a.attempt FROM attempts a"
                " JOIN nodes n ON n.log_index = a.log_index"
                " WHERE a.system = ? AND a.instance = ? ORDER BY a.log_index",
                (system, key),
            ).fetchall()
        return [Attempt(int(i), str(sha), None if a is None else int(a)) for i, sha, a in rows]

    def walk(self, roots: Iterable[int], *, down: bool = False) -> set[int]:
        """walk returns ``roots`` and every record reachable from them (one recursive CTE)."""
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"{_walk(tx.dialect, down=down)} SELECT n FROM walk",
                (tx.dialect.ints_param(roots),),
            ).fetchall()
        return {int(r[0]) for r in rows}

    def subgraph(
        self, roots: Iterable[int], *, down: bool = False
    ) -> tuple[dict[int, Node], list[Edge]]:
        """subgraph returns the nodes reachable from ``roots`` and the edges walked.

        One recursive CTE finds the records; their nodes and edges are then
        read by primary key (``edges`` by child going up, by ``(parent,
        child)`` going down), all in one read transaction.
        """
        side = "parent" if down else "child"
        with self._tx(write=False) as tx:
            ints = tx.dialect.ints("j")
            rows = tx.execute(
                f"{_walk(tx.dialect, down=down)} SELECT n FROM walk",
                (tx.dialect.ints_param(roots),),
            ).fetchall()
            reached = tx.dialect.ints_param(int(r[0]) for r in rows)
            node_rows = tx.execute(
                f"SELECT {_NODE_COLUMNS} FROM {ints} JOIN nodes n ON n.log_index = j.value",
                (reached,),
            ).fetchall()
            edge_rows = tx.execute(
                "SELECT e.child, e.parent, e.kind, e.via"
                f" FROM {ints} JOIN edges e ON e.{side} = j.value",
                (reached,),
            ).fetchall()
        nodes = {int(r[0]): Node(*r) for r in node_rows}
        edges = sorted(Edge(int(c), int(p), str(k), v) for c, p, k, v in edge_rows)
        return nodes, edges

    def nodes(self, log_indices: Iterable[int]) -> dict[int, Node]:
        """nodes returns the indexed nodes among ``log_indices``."""
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_NODE_COLUMNS} FROM {tx.dialect.ints('j')}"
                " JOIN nodes n ON n.log_index = j.value",
                (tx.dialect.ints_param(sorted(set(log_indices))),),
            ).fetchall()
        return {int(r[0]): Node(*r) for r in rows}

    def find(
        self,
        *,
        source: str | None = None,
        license: str | None = None,
        keyid: str | None = None,
        kind: str | None = None,
    ) -> list[int]:
        """find returns the records matching every filter given, oldest first.

        ``source`` and ``license`` are SQLite GLOB patterns (``*``, ``?``,
        ``[...]``; case-sensitive; a plain string matches exactly; the same on
        PostgreSQL) on ingest records' source URI and SPDX expression;
        ``keyid`` is the first signature's key id; ``kind`` one of :data:`KINDS`.
        """
        where: list[str] = []
        args: list[str] = []
        globs: list[tuple[str, str]] = []
        for column, value in (("source_uri", source), ("license", license)):
            if value is not None:
                globs.append((column, value))
        if keyid is not None:
            where.append("keyid = ?")
            args.append(keyid)
        if kind is not None:
            if kind not in KINDS:
                raise InputError(f"record kind {kind!r} is not one of {', '.join(KINDS)}")
            where.append("kind = ?")
            args.append(kind)
        if not where and not globs:
            raise InputError("give at least one of source, license, keyid or kind")
        with self._tx(write=False) as tx:
            where += [tx.dialect.glob(column) for column, _ in globs]
            args += [tx.dialect.glob_param(pattern) for _, pattern in globs]
            rows = tx.execute(
                f"SELECT log_index FROM nodes WHERE {' AND '.join(where)} ORDER BY log_index",
                args,
            ).fetchall()
        return [int(r[0]) for r in rows]

    # -- bulk loading (benchmarks, rebuilds) -------------------------------------

    def load_edges(
        self, nodes: Sequence[tuple[int, str, str]], edges: Sequence[tuple[int, int, str]]
    ) -> None:
        """load_edges writes synthetic ``(log_index, kind, name)`` nodes and ``(child, parent,
        kind)`` edges in one transaction, with no ledger behind them (benchmarks only)."""
        with self._tx() as tx:
            tx.executemany(
                _UPSERT_NODE, [(i, "", "", kind, "", name, None, None) for i, kind, name in nodes]
            )
            tx.executemany(
                "INSERT INTO edges (child, parent, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                edges,
            )
