"""The tries of one task instance: filed by instance, linked by ``retry-of``, checked.

An adapter files every try under ``orchestrator["instance"]`` and
``orchestrator["attempt"]``; the next try names the one before as
``orchestrator["previous_attempt"]`` (found with ``nodes.previous_attempt``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prov_core.errors import InputError, VerificationError
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.lineage_index import SCHEMA_VERSION, LineageIndex, instance_key, parse_record
from prov_core.nodes import previous_attempt, try_identity
from prov_core.step import Artifact, Attestation, record_step

from .conftest import demo_home, rename_step

INSTANCE = ["etl", "clean", "manual__1", -1]


@dataclass
class Tries:
    home: Any
    ingest: Attestation
    tries: list[Attestation]
    other: Attestation  # another map index of the same task: another instance


def _try(recorder: Any, home: Any, ingest: Attestation, instance: list[Any], n: int) -> Any:
    orchestrator = try_identity(home, "airflow", instance, n)
    state = "success" if n == 3 else "failed"
    outputs = [Artifact.from_bytes("out.json", b'{"rows": 3}')] if state == "success" else []
    return record_step(
        recorder,
        "etl.clean",
        inputs=[ingest],
        outputs=outputs,
        orchestrator={**orchestrator, "state": state},
    )


@pytest.fixture
def tries(tmp_path: Path) -> Iterator[Tries]:
    with demo_home(tmp_path) as (home, recorder, _, index, data):
        ingest = ingest_path(
            recorder,
            data / "reviews.csv",
            IngestRequest(source="https://example.org/r", license="CC0-1.0"),
            index=index,
        ).attestation
        made = [_try(recorder, home, ingest, INSTANCE, n) for n in (1, 2)]
        other = _try(recorder, home, ingest, [*INSTANCE[:3], 0], 1)
        made.append(_try(recorder, home, ingest, INSTANCE, 3))
        yield Tries(home, ingest, made, other)


def _orchestrator(home: Any, log_index: int) -> dict[str, Any]:
    with home.open_ledger() as ledger:
        statement = parse_record(log_index, ledger.entry(log_index)).statement
    assert statement is not None
    return dict(statement["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"])


def test_each_try_is_a_distinct_record_linked_to_the_one_before(tries: Tries) -> None:
    first, second, third = tries.tries
    assert len({t.log_index for t in tries.tries}) == 3
    assert "previous_attempt" not in _orchestrator(tries.home, first.log_index)
    for before, after in ((first, second), (second, third)):
        link = _orchestrator(tries.home, after.log_index)["previous_attempt"]
        assert link["log_index"] == before.log_index
        assert link["envelope_sha256"] == before.envelope_sha256
    # The other map index is its own instance: its first try links to nothing.
    assert "previous_attempt" not in _orchestrator(tries.home, tries.other.log_index)


def test_attempts_lists_the_tries_of_one_instance_only(tries: Tries) -> None:
    with open_lineage(tries.home) as lineage:
        lineage.catch_up()
        got = lineage.index.attempts("airflow", INSTANCE)
        assert [(a.log_index, a.attempt) for a in got] == [
            (t.log_index, n) for n, t in enumerate(tries.tries, 1)
        ]
        assert [a.log_index for a in lineage.index.attempts("airflow", [*INSTANCE[:3], 0])] == [
            tries.other.log_index
        ]
        assert lineage.index.attempts("prefect", INSTANCE) == []
    # The try before attempt 3 is attempt 2; before attempt 1 there is none.
    assert previous_attempt(tries.home, "airflow", INSTANCE, 3)["log_index"] == (
        tries.tries[1].log_index
    )
    assert previous_attempt(tries.home, "airflow", INSTANCE, 1) is None
    assert previous_attempt(tries.home, "airflow", INSTANCE)["attempt"] == 3


def test_retry_edges_are_walked_and_verified(tries: Tries) -> None:
    first, second, third = tries.tries
    with open_lineage(tries.home) as lineage:
        graph = lineage.upstream(third.log_index)
        edges = {(e.child, e.parent, e.kind) for e in graph.edges}
        assert (third.log_index, second.log_index, "retry-of") in edges
        assert (second.log_index, first.log_index, "retry-of") in edges
        assert (third.log_index, tries.ingest.log_index, "input") in edges
        assert tries.other.log_index not in graph.nodes
        report = lineage.verify_chain(third.log_index)
    assert report.ok, report.problems
    assert report.records[first.log_index].checks["link"] == "ok"


def test_a_tampered_earlier_try_is_named(tries: Tries) -> None:
    first, second, third = tries.tries
    with open_lineage(tries.home) as lineage:
        lineage.catch_up()  # indexed before the edit: the index still holds the old hash
    rename_step(tries.home.ledger_path, second.log_index, "etl.something-else")
    with pytest.raises(VerificationError, match=rf"record {second.log_index} .*changed"):
        previous_attempt(tries.home, "airflow", INSTANCE, 3)
    with open_lineage(tries.home) as lineage:
        report = lineage.verify_chain(third.log_index)
    assert not report.ok
    assert second.log_index in report.broken
    assert first.log_index not in report.broken
    assert any(
        p.log_index == second.log_index and p.check == "link" and "retry-of" in p.message
        for p in report.problems
    )


def test_an_older_index_is_rebuilt_at_this_version(tries: Tries) -> None:
    path = tries.home.path / "lineage.sqlite"
    with open_lineage(tries.home) as lineage:
        lineage.catch_up()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE attempts")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'version'")
    db.close()
    with LineageIndex(path) as index:
        with index._tx(write=False) as conn:
            version = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        assert index.indexed_to() == 0  # emptied: the next catch-up re-reads the ledger
    with open_lineage(tries.home) as lineage:
        lineage.catch_up()
        assert len(lineage.index.attempts("airflow", INSTANCE)) == 3


def test_a_newer_index_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lineage.sqlite"
    LineageIndex(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    with pytest.raises(Exception, match="not a provgate lineage index of version"):
        LineageIndex(path)


@pytest.mark.parametrize("parts", [[], "dag/task", [1.5], [None], [True], [["nested"]]])
def test_instance_key_refuses_what_is_not_a_list_of_strings_and_ints(parts: Any) -> None:
    with pytest.raises(InputError):
        instance_key(parts)


def test_instance_key_is_unambiguous() -> None:
    assert instance_key(["a/b", "c"]) != instance_key(["a", "b/c"])
    assert instance_key(["dag", "t", "run", -1]) == '["dag","t","run",-1]'


def test_malformed_orchestrator_fields_file_nothing(tmp_path: Path) -> None:
    with demo_home(tmp_path) as (home, recorder, _, _, _):
        for orchestrator in (
            {"name": "airflow", "instance": "not-a-list", "attempt": 1},
            {"name": "airflow", "instance": [], "attempt": 1},
            {"instance": INSTANCE, "attempt": 1},
            {"name": "airflow", "previous_attempt": {"log_index": -1, "envelope_sha256": "x"}},
        ):
            record_step(
                recorder,
                "odd",
                outputs=[Artifact.from_bytes("x", b"x")],
                orchestrator=orchestrator,
            )
        with open_lineage(home) as lineage:
            graph = lineage.upstream(3)
            assert [e for e in graph.edges if e.kind == "retry-of"] == []
            assert lineage.index.attempts("airflow", INSTANCE) == []


def test_ingest_and_snapshot_tries_are_filed_and_linked(tmp_path: Path) -> None:
    """An ingest task and a snapshot task that fail once: each retry's record names the
    failed try's record (a step) through the orchestrator block of its own predicate."""
    from prov_core.snapshot_record import commit_snapshot

    with demo_home(tmp_path) as (home, recorder, store, index, data):
        ingest_instance = ["etl", "ingest", "run-1", -1]
        failed = record_step(
            recorder,
            "etl.ingest",
            outputs=[Artifact.from_bytes("try-1", b"connection reset")],
            orchestrator={"name": "airflow", "instance": ingest_instance, "attempt": 1},
        )
        link = previous_attempt(home, "airflow", ingest_instance, 2)
        assert link is not None
        assert link["log_index"] == failed.log_index
        ingest = ingest_path(
            recorder,
            data / "reviews.csv",
            IngestRequest(
                source="https://example.org/r",
                license="CC0-1.0",
                orchestrator={
                    "name": "airflow",
                    "instance": ingest_instance,
                    "attempt": 2,
                    "previous_attempt": link,
                },
            ),
            index=index,
        ).attestation
        snap_instance = ["etl", "snapshot", "run-1", -1]
        snap_failed = record_step(
            recorder,
            "etl.snapshot",
            inputs=[ingest],
            orchestrator={"name": "airflow", "instance": snap_instance, "attempt": 1},
        )
        out = tmp_path / "out"
        out.mkdir()
        (out / "reviews.csv").write_bytes((data / "reviews.csv").read_bytes())
        snap = commit_snapshot(
            recorder,
            store,
            "demo",
            "main",
            out,
            index=index,
            derived_from=[ingest],
            orchestrator={
                "name": "airflow",
                "instance": snap_instance,
                "attempt": 2,
                "previous_attempt": previous_attempt(home, "airflow", snap_instance, 2),
            },
        )
        with open_lineage(home) as lineage:
            lineage.catch_up()
            assert [a.log_index for a in lineage.index.attempts("airflow", ingest_instance)] == [
                failed.log_index,
                ingest.log_index,
            ]
            assert [a.log_index for a in lineage.index.attempts("airflow", snap_instance)] == [
                snap_failed.log_index,
                snap.attestation.log_index,
            ]
            graph = lineage.upstream(snap.attestation.log_index)
            edges = {(e.child, e.parent, e.kind) for e in graph.edges}
            assert (ingest.log_index, failed.log_index, "retry-of") in edges
            assert (snap.attestation.log_index, snap_failed.log_index, "retry-of") in edges
            report = lineage.verify_chain(snap.attestation.log_index)
        assert report.ok, report.problems


def test_a_re_signed_last_try_by_an_untrusted_key_is_not_linked(tmp_path: Path) -> None:
    """The index rebuilds itself when its last entry changed, so a replaced *last* record
    hashes to what the index holds: its signature must still verify before a retry links it."""
    import base64
    import json

    from prov_core.errors import UntrustedKeyError
    from prov_core.signing import Ed25519Signer, sign_envelope

    with demo_home(tmp_path) as (home, recorder, _, _, _):
        first = record_step(
            recorder,
            "etl.clean",
            outputs=[Artifact.from_bytes("x", b"x")],
            orchestrator={"name": "airflow", "instance": INSTANCE, "attempt": 1},
        )
        db = sqlite3.connect(home.ledger_path, isolation_level=None)
        (leaf,) = db.execute(
            "SELECT leaf FROM entries WHERE idx = ?", (first.log_index,)
        ).fetchone()
        payload = base64.b64decode(json.loads(leaf)["payload"])
        forged = sign_envelope(payload, Ed25519Signer.generate()).canonical_bytes()
        db.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (forged, first.log_index))
        db.close()
        with pytest.raises(UntrustedKeyError, match=rf"record {first.log_index} .*does not verify"):
            previous_attempt(home, "airflow", INSTANCE, 2)
