"""OpenLineage: the provider's own events carry provgate's ``provgate_attestation`` run facet.

``dag.test()`` runs a small DAG with the OpenLineage provider configured as a user would
(``[openlineage] transport`` of type ``file``, ``custom_run_facets =
prov_airflow.openlineage.provgate_run_facets``) and its default emission: a process
forked per task event. The provider's plugin decides once, when it is imported, whether
it is enabled (it was imported unconfigured in this session), so its listener is added
to the task runners' listener manager for this run and removed after it. The events it
wrote are then read back: each ``COMPLETE`` / ``FAIL`` event of a task carries the
attestation of the record of that very try (log index and envelope SHA-256, as in the
ledger), and every event validates against the OpenLineage JSON Schemas
(``../shared/vendor/openlineage``, read in place) and our facet against ``docs/schemas/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _records import open_home, orchestrator, statement, tamper, tries
from conftest import _DAGS, DagRunResult

REPO = Path(__file__).resolve().parents[3]
FACET = "provgate_attestation"
SCHEMAS = REPO / "docs" / "schemas"
FACET_SCHEMA = "https://provgate.dev/schemas/openlineage-attestation-run-facet-v1.json"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
DAG_ID = "ol_facets"

DAG = """
import pendulum
from datetime import timedelta
from pathlib import Path
from airflow.sdk import dag, get_current_context, task
from prov_airflow import ProvenanceIngestOperator

WORK = Path("{work}")

@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def ol_facets():
    ingest = ProvenanceIngestOperator(
        task_id="ingest", path=str(WORK / "raw.csv"),
        source="https://example.org/reviews", license="CC0-1.0",
    )

    @task.provenance
    def clean():
        out = WORK / "clean.csv"
        out.write_text((WORK / "raw.csv").read_text().lower())
        return out

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def count(outputs):
        if get_current_context()["ti"].try_number == 1:
            raise RuntimeError("first try fails")
        return len(outputs)

    c = clean()
    ingest >> c
    count(c)

ol_facets()
"""


class Emitted:
    """The events the provider wrote, the provgate home and what the run pushed to XCom."""

    def __init__(self, events: list[dict[str, Any]], home: Any, run_id: str, xcoms: dict) -> None:
        self.events = events
        self.home = home
        self.run_id = run_id
        self.xcoms = xcoms

    def of(self, task_id: str, event_type: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["job"]["name"] == f"{DAG_ID}.{task_id}" and e["eventType"] == event_type
        ]


@pytest.fixture(scope="module")
def emitted(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Emitted:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener
    from airflow.sdk.listener import get_listener_manager

    manager = get_listener_manager()  # loads the plugins, before OpenLineage is configured
    root = tmp_path_factory.mktemp("openlineage")
    work = root / "work"
    work.mkdir()
    (work / "raw.csv").write_text("id,text\n1,Good Product\n2,BAD service\n")
    events_file = root / "events.jsonl"
    dag_file = _DAGS / f"{DAG_ID}.py"
    dag_file.write_text(
        textwrap.dedent(DAG).replace("{work}", str(work)).replace("{dag_id}", DAG_ID)
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__PROVGATE__HOME", str(root / "provgate"))
    mp.setenv("AIRFLOW__PROVGATE__LISTENER", "True")
    mp.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
    )
    mp.setenv(
        "AIRFLOW__OPENLINEAGE__CUSTOM_RUN_FACETS", "prov_airflow.openlineage.provgate_run_facets"
    )
    mp.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "provgate-test")
    assert not [p for p in manager.pm.get_plugins() if isinstance(p, OpenLineageListener)]
    listener = OpenLineageListener()
    manager.add_listener(listener)
    try:
        bag = DagBag(dag_folder=str(dag_file))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(DAG_ID)
        res = DagRunResult(dag, dag.test())
    finally:
        manager.pm.unregister(listener)
        listener.before_stopping(component=None)  # the pool of its DAG-run events
        dag_file.unlink(missing_ok=True)
        mp.undo()
    assert res.state == "success", res.states
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line]
    return Emitted(events, open_home(root / "provgate"), res.run_id, res.xcoms)


def _entry_sha256(home: Any, log_index: int) -> str:
    with home.open_ledger() as ledger:
        return hashlib.sha256(ledger.entry(log_index)).hexdigest()


def test_each_finished_try_carries_the_attestation_of_its_record(emitted: Emitted) -> None:
    home = emitted.home
    # The provgate operator, @task.provenance and the listener's plain task, try by try:
    # (task, event type, the record of that try).
    count_tries = tries(home, [DAG_ID, "count", emitted.run_id, -1])
    assert [t.attempt for t in count_tries] == [1, 2]
    expected = [
        ("ingest", "COMPLETE", emitted.xcoms[("ingest", -1, FACET)]["log_index"]),
        ("clean", "COMPLETE", emitted.xcoms[("clean", -1, FACET)]["log_index"]),
        ("count", "FAIL", count_tries[0].log_index),
        ("count", "COMPLETE", count_tries[1].log_index),
    ]
    assert emitted.xcoms[("count", -1, FACET)]["log_index"] == count_tries[1].log_index
    for task_id, event_type, log_index in expected:
        (event,) = emitted.of(task_id, event_type)
        facet = event["run"]["facets"][FACET]
        assert facet["logIndex"] == log_index, (task_id, event_type)
        assert facet["envelopeSha256"] == _entry_sha256(home, log_index)
        assert facet["ledgerOrigin"] == home.origin
        assert facet["uri"] == f"provgate+log://{home.origin}/{log_index}"
        assert facet["checkpointSize"] > log_index  # a signed checkpoint includes the entry
    # The failed try's record is the failure, and the retry's record links to it.
    assert orchestrator(statement(home, count_tries[0].log_index))["state"] == "failed"
    link = orchestrator(statement(home, count_tries[1].log_index))["previous_attempt"]
    assert link["log_index"] == count_tries[0].log_index
    # A START event is sent before any record of its try exists: no facet.
    starts = [e for e in emitted.events if e["eventType"] == "START" and "." in e["job"]["name"]]
    assert len(starts) == 4
    assert all(FACET not in e["run"].get("facets", {}) for e in starts)


def _registry() -> Any:
    """The vendored OpenLineage schemas and ours, resolved locally (skips visibly without)."""
    from referencing import Registry, Resource

    vendor = Path(os.environ.get("PROVGATE_VENDOR_DIR") or REPO.parent / "shared" / "vendor")
    spec = vendor / "openlineage"
    if not (spec / "OpenLineage.json").is_file():
        reason = f"OpenLineage JSON Schemas not found ({spec}): events cannot be validated"
        if os.environ.get("PROVGATE_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    files = [
        spec / "OpenLineage.json",
        *sorted((spec / "facets").glob("*.json")),
        SCHEMAS / "openlineage-attestation-run-facet-v1.json",
    ]
    resources = [Resource.from_contents(json.loads(p.read_text())) for p in files]
    return Registry().with_resources((r.id(), r) for r in resources)


def test_events_validate_against_the_openlineage_schemas(emitted: Emitted) -> None:
    from jsonschema import Draft202012Validator, ValidationError
    from referencing.exceptions import Unresolvable

    registry = _registry()

    def validate(instance: Any, ref: str) -> None:
        Draft202012Validator({"$ref": ref}, registry=registry).validate(instance)

    checked: set[str] = set()
    for event in emitted.events:
        validate(event, RUN_EVENT)
        for key, facet in event["run"].get("facets", {}).items():
            try:  # every facet whose schema is vendored (Airflow's own facets are not)
                validate(facet, facet["_schemaURL"])
                checked.add(key)
            except Unresolvable:
                continue
        if FACET in event["run"].get("facets", {}):
            validate({FACET: event["run"]["facets"][FACET]}, FACET_SCHEMA)
    assert {FACET, "parent", "processing_engine"} <= checked
    # Our schema rejects a facet whose digest is not one.
    facet = next(e for e in emitted.events if FACET in e["run"].get("facets", {}))
    bad = {FACET: {**facet["run"]["facets"][FACET], "envelopeSha256": "not-hex"}}
    with pytest.raises(ValidationError):
        validate(bad, FACET_SCHEMA)


def test_the_facet_is_found_by_instance_outside_the_task_runner(
    emitted: Emitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider also emits from processes that recorded nothing (a state set by hand,
    on the scheduler), with the metadata database's task instances: the facet is then
    found by instance in the lineage index and checked against the ledger; an edited
    record gets no facet. (Runs last: it edits the module's ledger.)"""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.settings import Session
    from airflow.utils.state import TaskInstanceState
    from prov_airflow import _node
    from prov_airflow.openlineage import provgate_run_facets

    monkeypatch.setattr(_node, "_RECORDED", {})  # nothing recorded in this process
    monkeypatch.setenv("AIRFLOW__PROVGATE__HOME", str(emitted.home.path))
    first, second = tries(emitted.home, [DAG_ID, "count", emitted.run_id, -1])
    session = Session()
    try:
        where = (TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == emitted.run_id)
        tis = {ti.task_id: ti for ti in session.query(TaskInstance).filter(*where)}
        (failed_try,) = session.query(TaskInstanceHistory).filter(
            TaskInstanceHistory.dag_id == DAG_ID,
            TaskInstanceHistory.run_id == emitted.run_id,
            TaskInstanceHistory.task_id == "count",
        )
        assert (failed_try.try_number, tis["count"].try_number) == (1, 2)

        def facet(ti: Any, state: Any) -> Any:
            return provgate_run_facets(ti, state).get(FACET)

        found = facet(tis["count"], TaskInstanceState.SUCCESS)
        assert (found.logIndex, found.envelopeSha256) == (second.log_index, second.envelope_sha256)
        (event,) = emitted.of("count", "COMPLETE")
        assert found.checkpointSize >= event["run"]["facets"][FACET]["checkpointSize"]
        found = facet(failed_try, TaskInstanceState.FAILED)
        assert (found.logIndex, found.envelopeSha256) == (first.log_index, first.envelope_sha256)
        assert facet(tis["count"], TaskInstanceState.RUNNING) is None
        # An ingest record carries its task instance's identity too (in its predicate).
        (ingest,) = tries(emitted.home, [DAG_ID, "ingest", emitted.run_id, -1])
        found = facet(tis["ingest"], TaskInstanceState.SUCCESS)
        assert (found.logIndex, found.envelopeSha256) == (ingest.log_index, ingest.envelope_sha256)

        def edit(st: dict[str, Any]) -> None:
            st["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]["error"] = "-"

        # (An earlier entry: the lineage index, a cache, rebuilds itself from the ledger
        # when its last indexed entry changes, and would then hold the edited hash.)
        tamper(emitted.home, first.log_index, edit)
        assert facet(failed_try, TaskInstanceState.FAILED) is None
        assert facet(tis["count"], TaskInstanceState.SUCCESS).logIndex == second.log_index
    finally:
        session.close()
