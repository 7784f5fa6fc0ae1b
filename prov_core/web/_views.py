"""What the lineage pages show, as plain JSON-ready dicts (no FastAPI here).

:func:`lineage_view` is the document behind a record, artifact or snapshot
page and its ``/api/...`` twin::

    target, roots                the target as given, the records it resolves to
    ok                           True when every verified record holds
    nodes[]                      Node.to_dict() + side (target|up|down),
                                 status (ok|failing|unchecked), checks, reasons[]
    edges[]                      {child, parent, kind}: child was made from parent
    sources[]                    the upstream ingest records (source URI, license)
    records[]                    per root: statement (decoded, not trusted),
                                 keyids, inclusion proof
    checkpoint                   {note, size, root_hash} of the latest checkpoint
    problems[]                   problems naming no record (e.g. the checkpoint)

Verification status: :meth:`Lineage.verify_chain` checks a target and
everything upstream of it, so the view verifies the target and each
downstream *sink* (a node nothing in the graph was made from); together their
chains cover every node shown. At most :data:`MAX_VERIFIED_SINKS` sinks are
verified; nodes beyond are ``unchecked``.

Search by run id is not in the lineage index (``prov_core.lineage_index``
indexes source, license and key): :class:`RunIndex` keeps, per ledger, an
in-memory map of ``invocationId`` -> log indices, caught up with the ledger
on each query (a first query on a large ledger reads it once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core.errors import ProvgateError

if TYPE_CHECKING:
    from prov_core.ledger.base import Ledger
    from prov_core.lineage import ChainReport, Graph, Lineage

MAX_VERIFIED_SINKS = 16
"""MAX_VERIFIED_SINKS bounds the chains one page verifies (each is a full upstream walk)."""
MAX_RESULTS = 200
"""MAX_RESULTS bounds a search's result list."""

_RANK = {"unchecked": 0, "ok": 1, "failed": 2}


def lineage_view(lineage: Lineage, target: str | int) -> dict[str, Any]:
    """lineage_view builds the lineage page document (module docstring) for ``target``."""
    up = lineage.upstream(target)
    down = lineage.downstream(target)
    roots = set(up.roots)
    side: dict[int, str] = dict.fromkeys(up.nodes, "up")
    side.update(dict.fromkeys(down.nodes, "down"))
    side.update(dict.fromkeys(roots, "target"))
    edges = sorted({(e.child, e.parent, e.kind) for e in (*up.edges, *down.edges)})

    reports = [lineage.verify_chain(target)]
    sinks = _sinks(down)
    for sink in sinks[:MAX_VERIFIED_SINKS]:
        if sink not in roots:
            reports.append(lineage.verify_chain(sink))
    checks, reasons, general = _merge(reports)

    nodes: list[dict[str, Any]] = []
    for i in sorted(side):
        node = (up.nodes.get(i) or down.nodes[i]).to_dict()
        node_checks = checks.get(i)
        if node_checks is None:
            status = "unchecked"
        elif "failed" in node_checks.values() or reasons.get(i):
            status = "failing"
        else:
            status = "ok"
        node.update(
            side=side[i], status=status, checks=node_checks or {}, reasons=reasons.get(i, [])
        )
        nodes.append(node)

    first = reports[0]
    size = first.checkpoint_size
    return {
        "target": up.target,
        "roots": sorted(roots),
        "ok": all(n["status"] == "ok" for n in nodes) and not general,
        "nodes": nodes,
        "edges": [{"child": c, "parent": p, "kind": k} for c, p, k in edges],
        "sources": [
            {
                "log_index": n.log_index,
                "name": n.name,
                "source_uri": n.source_uri,
                "license": n.license,
            }
            for n in up.of_kind("ingest")
        ],
        "records": [record_view(lineage.ledger, i, size) for i in sorted(roots)],
        "checkpoint": checkpoint_view(lineage.ledger, size, first.root_hash),
        "problems": general,
        "unverified_sinks": max(0, len(sinks) - MAX_VERIFIED_SINKS),
    }


def _sinks(down: Graph) -> list[int]:
    parents = {e.parent for e in down.edges}
    return [i for i in sorted(down.nodes) if i not in parents]


def _merge(
    reports: Iterable[ChainReport],
) -> tuple[dict[int, dict[str, str]], dict[int, list[str]], list[str]]:
    """_merge combines reports: a check failed in any report fails; reasons deduplicated."""
    checks: dict[int, dict[str, str]] = {}
    reasons: dict[int, list[str]] = {}
    general: list[str] = []
    for report in reports:
        for i, rec in report.records.items():
            merged = checks.setdefault(i, {})
            for name, value in rec.checks.items():
                if _RANK.get(value, 0) >= _RANK.get(merged.get(name, "unchecked"), 0):
                    merged[name] = value
        for p in report.problems:
            text = f"{p.check}: {p.message}"
            bucket = general if p.log_index is None else reasons.setdefault(p.log_index, [])
            if text not in bucket:
                bucket.append(text)
    return checks, reasons, general


def record_view(ledger: Ledger, log_index: int, size: int | None) -> dict[str, Any]:
    """record_view is one record as stored: decoded statement, signing keys, inclusion proof.

    The statement is decoded from the stored bytes for display, not trusted:
    whether it verifies is the node's status.
    """
    from prov_core.records import decode_entry, inclusion_proof

    out: dict[str, Any] = {"log_index": log_index}
    try:
        envelope, statement = decode_entry(ledger.entry(log_index))
        out["statement"] = statement
        out["keyids"] = [s.get("keyid") for s in envelope.get("signatures", [])]
    except (ProvgateError, ValueError) as exc:
        out["statement"] = None
        out["error"] = f"record {log_index} does not decode: {exc}"
    try:
        in_checkpoint = size is not None and log_index < size
        out["inclusion_proof"] = inclusion_proof(ledger, log_index, size if in_checkpoint else None)
    except ProvgateError as exc:
        out["inclusion_proof"] = None
        out["proof_error"] = str(exc)
    return out


def checkpoint_view(ledger: Ledger, size: int | None, root_hash: str | None) -> dict[str, Any]:
    """checkpoint_view is the latest signed checkpoint note, and what verified of it."""
    note = ledger.latest_checkpoint()
    return {
        "note": note.decode("utf-8", "replace") if note is not None else None,
        "size": size,
        "root_hash": root_hash,
        "verified": size is not None,
    }


def nodes_view(lineage: Lineage, log_indices: Iterable[int]) -> list[dict[str, Any]]:
    """nodes_view lists the indexed nodes among ``log_indices`` (at most MAX_RESULTS)."""
    wanted = sorted(set(log_indices))[:MAX_RESULTS]
    found = lineage.index.nodes(wanted)
    return [found[i].to_dict() for i in wanted if i in found]


def recent_view(lineage: Lineage, count: int = 50) -> list[dict[str, Any]]:
    """recent_view lists the last ``count`` records of the ledger, newest first."""
    lineage.catch_up()
    size = lineage.ledger.size()
    return list(reversed(nodes_view(lineage, range(max(0, size - count), size))))


class RunIndex:
    """RunIndex maps run ids (``invocationId``) to log indices, caught up from a ledger.

    One per app; thread-safe. Rebuilt from scratch if the ledger got shorter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ledger: dict[Path, tuple[int, dict[str, list[int]]]] = {}

    def find(self, ledger: Ledger, path: Path, run_id: str) -> list[int]:
        """find returns the records whose run id is exactly ``run_id``, oldest first."""
        with self._lock:
            done, runs = self._by_ledger.get(path, (0, {}))
            size = ledger.size()
            if size < done:
                done, runs = 0, {}
            for i, leaf in ledger.entries(done, size):
                rid = _run_id(leaf)
                if rid is not None:
                    runs.setdefault(rid, []).append(i)
            self._by_ledger[path] = (size, runs)
            return list(runs.get(run_id, []))


def _run_id(leaf: bytes) -> str | None:
    import base64

    try:
        envelope = json.loads(leaf)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        predicate = statement["predicate"]
    except (ValueError, KeyError, TypeError):
        return None
    return _find_invocation(predicate, depth=3)


def _find_invocation(value: Any, depth: int) -> str | None:
    if not isinstance(value, Mapping) or depth < 0:
        return None
    rid = value.get("invocationId")
    if isinstance(rid, str):
        return rid
    for child in value.values():
        found = _find_invocation(child, depth - 1)
        if found is not None:
            return found
    return None
