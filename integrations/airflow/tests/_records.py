"""Reading back what the DAG runs recorded, straight from the provgate ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_home(path: Path) -> Any:
    from prov_core.home import open_home as _open

    return _open(path)


def statement(home: Any, log_index: int) -> dict[str, Any]:
    from prov_core.records import decode_entry

    with home.open_ledger() as ledger:
        return decode_entry(ledger.entry(log_index))[1]


def input_indices(st: dict[str, Any]) -> dict[int, str]:
    """log index -> envelope sha256 of every attestation input of a step statement."""
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    return {
        d["annotations"]["logIndex"]: d["digest"]["sha256"]
        for d in deps
        if d["name"].startswith("attestation:")
    }


def orchestrator(st: dict[str, Any]) -> dict[str, Any]:
    """The run identity of a step, or of an ingest or snapshot record (in its predicate)."""
    predicate = st["predicate"]
    if "buildDefinition" not in predicate:
        return predicate["orchestrator"]
    return predicate["buildDefinition"]["internalParameters"]["orchestrator"]


def node_report(home: Any, attestation: dict[str, Any]) -> Any:
    from prov_core.nodes import attestation_from_dict, verify_node

    return verify_node(attestation_from_dict(attestation), home=home)


def steps(home: Any) -> list[tuple[int, dict[str, Any]]]:
    """Every SLSA Provenance statement in the ledger, with its log index."""
    from prov_core.records import decode_entry

    out = []
    with home.open_ledger() as ledger:
        for i in range(ledger.size()):
            st = decode_entry(ledger.entry(i))[1]
            if st["predicateType"] == "https://slsa.dev/provenance/v1":
                out.append((i, st))
    return out


def tries(home: Any, instance: list[Any]) -> list[Any]:
    """The records filed for every try of a task instance, oldest first (the lineage index)."""
    from prov_core.lineage import open_lineage

    with open_lineage(home) as lineage:
        lineage.catch_up()
        return lineage.index.attempts("airflow", instance)


def assert_retry_of(home: Any, before: Any, after: Any, *, custody: bool = True) -> None:
    """``after`` is the record of the try after ``before``: linked, and both verify.

    Without ``custody`` (a DAG with no ingest record) the chains may only lack an ingest
    record: every record and link in them still verifies.
    """
    from prov_core.lineage import open_lineage

    link = orchestrator(statement(home, after.log_index))["previous_attempt"]
    assert link == before.to_dict()
    assert "previous_attempt" not in orchestrator(statement(home, before.log_index)) or (
        before.attempt is not None and before.attempt > 1
    )
    with open_lineage(home) as lineage:
        graph = lineage.upstream(after.log_index)
        assert (after.log_index, before.log_index, "retry-of") in {
            (e.child, e.parent, e.kind) for e in graph.edges
        }
        for record in (before, after):
            report = lineage.verify_chain(record.log_index)
            problems = [p for p in report.problems if custody or p.check != "ingest"]
            assert not problems, report.problems
            failed = [
                (i, check)
                for i, r in report.records.items()
                for check, result in r.checks.items()
                if result == "failed" and (custody or check != "ingest")
            ]
            assert not failed, report.to_dict()
        # The retry's chain reaches the earlier try through the signed link, and checks it.
        assert report.records[before.log_index].checks["link"] == "ok"


def tamper(home: Any, log_index: int, edit: Any) -> None:
    """Edit a record's statement in the SQLite ledger, as someone holding the file but not
    the key would: the payload changes, the signature and the tree's hashes do not."""
    import base64
    import json
    import sqlite3

    db = sqlite3.connect(home.ledger_path, isolation_level=None)
    try:
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (log_index,)).fetchone()
        envelope = json.loads(leaf)
        st = json.loads(base64.b64decode(envelope["payload"]))
        edit(st)
        envelope["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
        db.execute(
            "UPDATE entries SET leaf = ? WHERE idx = ?", (json.dumps(envelope).encode(), log_index)
        )
    finally:
        db.close()
