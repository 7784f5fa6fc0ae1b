"""Every try recorded inside the run: retries linked, fail closed, asset metadata."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow, task
from prefect.assets import materialize
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.context import get_run_context
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventRelatedFilter,
    EventResourceFilter,
)
from prefect.events.worker import EventsWorker
from prov_prefect import (
    EVENT_RECORDED,
    ProvenanceConfig,
    provenance,
    provenance_flow,
    read_flow_nodes,
    read_task_run_nodes,
)
from prov_prefect import ingest as prefect_ingest

from prov_core.ingest import IngestRequest
from prov_core.lineage import open_lineage
from prov_core.lineage_index import parse_record
from prov_core.nodes import verify_node
from prov_core.step import Artifact

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def cfg(tmp_path: Path) -> ProvenanceConfig:
    return ProvenanceConfig(home=str(tmp_path / "provgate"))


def _orchestrator(home: Any, log_index: int) -> dict[str, Any]:
    with home.open_ledger() as ledger:
        statement = parse_record(log_index, ledger.entry(log_index)).statement
    assert statement is not None
    return dict(statement["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"])


def _events(event_filter: EventFilter, want: int) -> list[Any]:
    """The events matching ``event_filter``, once ``want`` of them reached the server."""
    found: list[Any] = []
    for _ in range(50):
        EventsWorker.drain_all()
        with get_client(sync_client=True) as client:
            found = client.read_events(filter=event_filter, limit=50).events
        if len(found) >= want:
            break
        time.sleep(0.2)
    return found


def _ingest_task(tmp_path: Path, cfg: ProvenanceConfig) -> Any:
    raw = tmp_path / "raw.csv"
    raw.write_text("id,text\n1,good\n2,fine\n")

    @provenance(config=cfg)
    @task
    def ingest(path: Path) -> Any:
        request = IngestRequest(source="https://example.org/reviews", license="CC0-1.0")
        return prefect_ingest(path, request, config=cfg)

    return ingest, raw


def test_each_try_is_a_record_linked_to_the_one_before(tmp_path: Path, cfg) -> None:
    ingest, raw = _ingest_task(tmp_path, cfg)
    calls: list[int] = []

    @provenance(config=cfg)
    @task(retries=2)
    def flaky(ingested: Any) -> dict[str, int]:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"try {len(calls)} fails")
        return {"rows": 2}

    @provenance_flow(config=cfg)
    @flow
    def pipeline() -> tuple[UUID, Any]:
        state = flaky(ingest(raw), return_state=True)
        return get_run_context().flow_run.id, state  # type: ignore[union-attr]

    flow_run_id, state = pipeline()
    assert state.is_completed()
    run_id = state.state_details.task_run_id
    home = cfg.open_home()

    # Three records filed under the task run, tries 1, 2, 3, each linked to the one before.
    with open_lineage(home) as lineage:
        lineage.catch_up()
        tries = lineage.index.attempts("prefect", [str(run_id)])
        assert [t.attempt for t in tries] == [1, 2, 3]
        final = tries[-1]
        graph = lineage.upstream(final.log_index)
        report = lineage.verify_chain(final.log_index)
    orchestrators = [_orchestrator(home, t.log_index) for t in tries]
    assert [o["state"] for o in orchestrators] == ["failed", "failed", "completed"]
    assert [o["instance"] for o in orchestrators] == [[str(run_id)]] * 3
    assert orchestrators[0]["error"] == "RuntimeError: try 1 fails"
    assert orchestrators[1]["error"] == "RuntimeError: try 2 fails"
    assert "previous_attempt" not in orchestrators[0]
    for before, o in zip(tries, orchestrators[1:], strict=False):
        assert o["previous_attempt"] == before.to_dict()
    edges = {(e.child, e.parent, e.kind) for e in graph.edges}
    assert (tries[2].log_index, tries[1].log_index, "retry-of") in edges
    assert (tries[1].log_index, tries[0].log_index, "retry-of") in edges
    assert report.ok, report.problems

    # Each try has its node artifact, verifying; the task run's node is the final record.
    nodes = [n for n in read_flow_nodes(flow_run_id) if n.task_run_id == run_id]
    assert [(n.attempt, n.state) for n in nodes] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert [n.attestation.log_index for n in nodes] == [t.log_index for t in tries]
    for n in nodes:
        assert n.verified == "ok"
        assert verify_node(n.attestation, home=home).ok
    assert read_task_run_nodes([run_id])[run_id].attestation.log_index == final.log_index

    # One event per try, related to the task run; the last names the final record.
    recorded = _events(
        EventFilter(
            event=EventNameFilter(name=[EVENT_RECORDED]),
            related=EventRelatedFilter(id=[f"prefect.task-run.{run_id}"]),
        ),
        3,
    )
    by_try = {e.payload["attempt"]: e.payload for e in recorded}
    assert sorted(by_try) == [1, 2, 3]
    assert by_try[3]["log_index"] == final.log_index
    assert by_try[3]["envelope_sha256"] == final.envelope_sha256
    assert by_try[3]["state"] == "completed"

    # The flow run's lineage draws the retries.
    with get_client(sync_client=True) as client:
        (lineage_md,) = [
            a
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            if a.type == "markdown"
        ]
    assert f"r{tries[0].log_index} -. retry .-> r{tries[1].log_index}" in lineage_md.data


@pytest.mark.parametrize("outcome", ["returns", "raises"])
def test_a_try_that_cannot_be_recorded_fails_naming_the_ledger(
    tmp_path: Path, outcome: str
) -> None:
    home = ProvenanceConfig(home=str(tmp_path / "provgate")).open_home()
    # The ledger is unusable: a directory where its database file was.
    for f in home.path.glob(home.ledger_path.name + "*"):
        f.unlink()
    home.ledger_path.mkdir()
    cfg = ProvenanceConfig(home=str(home.path), create_home=False)

    @provenance(config=cfg)
    @task
    def shout(text: str) -> str:
        if outcome == "raises":
            raise ValueError("bad text")
        return text.upper()

    states: list[Any] = []

    @flow
    def f() -> None:
        states.append(shout("hello", return_state=True))

    f()  # the flow does not return the failed state: that would fail the flow
    (state,) = states
    assert state.is_failed()
    message = state.message or ""
    assert "ProvenanceError" in message
    assert "could not be recorded" in message
    assert f"{home.ledger_path} is a directory, not a SQLite file" in message
    if outcome == "raises":  # the task's own error is named too
        assert "failed (ValueError: bad text) and could not be recorded" in message
    assert read_task_run_nodes([state.state_details.task_run_id]) == {}


def test_a_materialized_asset_carries_the_node(tmp_path: Path, cfg) -> None:
    out = tmp_path / "report.json"
    asset = f"file://{tmp_path.as_posix()}/report.json"

    @provenance(config=cfg)
    @materialize(asset)
    def report() -> Path:
        out.write_text('{"rows": 2}\n')
        return out

    @flow
    def f() -> UUID:
        report()
        return get_run_context().flow_run.id  # type: ignore[union-attr]

    flow_run_id = f()
    (node,) = read_flow_nodes(flow_run_id)
    (event,) = _events(
        EventFilter(
            event=EventNameFilter(prefix=["prefect.asset.materialization."]),
            resource=EventResourceFilter(id=[asset]),
        ),
        1,
    )
    assert event.event == "prefect.asset.materialization.succeeded"
    meta = event.payload["provgate"]
    assert meta["log_index"] == node.attestation.log_index
    assert meta["envelope_sha256"] == node.attestation.envelope_sha256
    with cfg.open_home().open_ledger() as ledger:  # the signed envelope the event names
        assert (
            hashlib.sha256(ledger.entry(meta["log_index"])).hexdigest() == meta["envelope_sha256"]
        )
    written = Artifact.from_path(out, name="report.json")
    assert meta["digests"] == [
        {"name": "report.json", "sha256": written.sha256, "blake3": written.blake3}
    ]
    assert meta["state"] == "completed"
    assert meta["link"].endswith(f"/records/{node.attestation.log_index}")


def test_an_async_task_is_recorded_the_same_way(tmp_path: Path, cfg) -> None:
    ingest, raw = _ingest_task(tmp_path, cfg)
    calls: list[int] = []

    @provenance(config=cfg)
    @task(retries=1)
    async def count(ingested: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first try fails")
        return 2

    @flow
    def f() -> tuple[UUID, Any]:
        # submitted from a sync flow: an async flow run with asyncio.run leaves one of
        # Prefect's sockets unclosed (a ResourceWarning, an error here), with or without provgate
        future = count.submit(ingest(raw))
        future.wait()
        return get_run_context().flow_run.id, future.state  # type: ignore[union-attr]

    flow_run_id, state = f()
    assert state.is_completed()
    run_id = state.state_details.task_run_id
    nodes = [n for n in read_flow_nodes(flow_run_id) if n.task_run_id == run_id]
    assert [(n.attempt, n.state, n.verified) for n in nodes] == [
        (1, "failed", "ok"),
        (2, "completed", "ok"),
    ]
    last = _orchestrator(cfg.open_home(), nodes[1].attestation.log_index)
    assert last["previous_attempt"]["log_index"] == nodes[0].attestation.log_index


def test_an_ingest_retry_links_its_record_to_the_failed_try(tmp_path: Path, cfg) -> None:
    """A task whose value is its own record (``ingest(...)``): the ingest record of the
    try that succeeds carries the run identity in its predicate, linked to the failed try."""
    raw = tmp_path / "raw.csv"
    raw.write_text("id,text\n1,good\n2,fine\n")
    calls: list[int] = []

    @provenance(config=cfg)
    @task(retries=1)
    def ingest(path: Path) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("source unreachable")
        request = IngestRequest(source="https://example.org/reviews", license="CC0-1.0")
        return prefect_ingest(path, request, config=cfg)

    @flow
    def pipeline() -> Any:
        return ingest(raw, return_state=True)

    state = pipeline()
    assert state.is_completed()
    run_id = str(state.state_details.task_run_id)
    home = cfg.open_home()
    with open_lineage(home) as lineage:
        lineage.catch_up()
        failed, final = lineage.index.attempts("prefect", [run_id])
        edges = {(e.child, e.parent, e.kind) for e in lineage.upstream(final.log_index).edges}
        report = lineage.verify_chain(final.log_index)
        kinds = lineage.index.nodes([failed.log_index, final.log_index])
    assert (kinds[failed.log_index].kind, kinds[final.log_index].kind) == ("transform", "ingest")
    assert _orchestrator(home, failed.log_index)["error"] == "ConnectionError: source unreachable"
    with home.open_ledger() as ledger:
        statement = parse_record(final.log_index, ledger.entry(final.log_index)).statement
    assert statement is not None
    identity = statement["predicate"]["orchestrator"]
    assert identity["instance"] == [run_id]
    assert identity["attempt"] == 2
    assert identity["previous_attempt"] == failed.to_dict()
    assert (final.log_index, failed.log_index, "retry-of") in edges
    assert report.ok, report.problems
    assert read_task_run_nodes([UUID(run_id)])[UUID(run_id)].attestation.log_index == (
        final.log_index
    )
