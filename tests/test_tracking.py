"""prov_core.tracking: the gate in front of a tracker run and the training record after it.

The MLflow and W&B integrations test the tracker side with the real libraries;
this is the shared, tracker-neutral part on a real home (ledger, store, gate),
GatedRun's lifecycle included, with an in-memory tracker behind its hooks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prov_core.errors import GateRefused, InputError
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.records import decode_entry
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.statement import SLSA_PROVENANCE_V1, SLSA_VSA_V1
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation
from prov_core.tracking import (
    GatedInputs,
    GatedRun,
    TrackerRun,
    link_fields,
    open_gate,
    record_training,
)

from .conftest import demo_home


@dataclass
class Gated:
    home: Home
    ingest: int
    snap: SnapshotResult
    uri: str
    work: Path


@pytest.fixture
def gated_home(tmp_path: Path) -> Iterator[Gated]:
    with demo_home(tmp_path) as (home, recorder, store, index, data):
        request = IngestRequest(source="https://docs.example.org/handbook", license="CC-BY-4.0")
        ingest = ingest_path(recorder, data / "docs", request, index=index).attestation
        snap = commit_snapshot(recorder, store, "demo", "main", data / "docs", index=index)
        work = tmp_path / "work"
        work.mkdir()
        yield Gated(home, ingest.log_index, snap, f"provgate://demo/{snap.commit_id}", work)


def _entry(home: Home, log_index: int) -> tuple[bytes, dict]:
    with home.open_ledger() as ledger:
        leaf = ledger.entry(log_index)
    return leaf, decode_entry(leaf)[1]


def test_open_gate_describes_each_pinned_input_from_the_signed_decision(gated_home: Gated) -> None:
    g = gated_home
    gated = open_gate([g.uri, g.uri + "/faq.md"], home=g.home)

    assert gated.decision.allowed
    leaf, vsa = _entry(g.home, gated.vsa.log_index)
    assert vsa["predicateType"] == SLSA_VSA_V1
    assert hashlib.sha256(leaf).hexdigest() == gated.vsa.envelope_sha256
    snapshot_leaf, _ = _entry(g.home, g.snap.log_index)
    assert [p.uri for p in gated.inputs] == [g.uri, g.uri + "/faq.md"]
    for pinned in gated.inputs:
        assert pinned.repository == "demo"
        assert pinned.commit == g.snap.commit_id
        assert pinned.record == g.snap.log_index
        assert pinned.record_sha256 == hashlib.sha256(snapshot_leaf).hexdigest()
        assert pinned.manifest_sha256 == g.snap.attestation.subjects[0].sha256
        assert pinned.to_dict()["manifest_sha256"] == pinned.manifest_sha256


def test_open_gate_refuses_a_branch_and_records_the_refusal(gated_home: Gated) -> None:
    g = gated_home
    with pytest.raises(GateRefused, match="unpinned") as refused:
        open_gate(["provgate://demo/main"], home=g.home)
    vsa = refused.value.decision.vsa  # type: ignore[attr-defined]
    _, statement = _entry(g.home, vsa.log_index)
    assert statement["predicate"]["verificationResult"] == "FAILED"


def test_record_training_names_the_tracker_run_and_the_model_and_traces_to_the_ingest(
    gated_home: Gated,
) -> None:
    g = gated_home
    gated = open_gate([g.uri], home=g.home)
    model = g.work / "model.bin"
    model.write_bytes(b"weights")
    artifact = Artifact.from_path(model, name="clf")

    att = record_training(
        g.home,
        gated,
        [artifact],
        tracker={"name": "some-tracker", "run_id": "run-7", "experiment": "e1"},
        parameters={"C": "1.0"},
    )

    _, statement = _entry(g.home, att.log_index)
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == TRAINING_BUILD_TYPE
    assert build["internalParameters"]["orchestrator"] == {
        "name": "some-tracker",
        "run_id": "run-7",
        "experiment": "e1",
    }
    assert build["externalParameters"]["parameters"] == {"C": "1.0", "inputs": [g.uri]}
    assert [d["digest"]["sha256"] for d in build["resolvedDependencies"]] == [
        gated.vsa.envelope_sha256
    ]
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == "run-7"
    assert statement["subject"] == [{"name": "clf", "digest": {"sha256": artifact.sha256}}]
    with open_lineage(g.home) as lineage:
        up = lineage.upstream(f"sha256:{artifact.sha256}")
        assert g.ingest in {n.log_index for n in up.of_kind("ingest")}
        assert lineage.verify_chain(f"sha256:{artifact.sha256}").ok


@pytest.mark.parametrize(
    ("models", "tracker", "message"),
    [
        ((), {"name": "t", "run_id": "r"}, "no model to record"),
        (None, {"name": "t"}, "lacks run_id"),
        (None, {"run_id": "r"}, "lacks name"),
    ],
)
def test_record_training_refuses_bad_input_before_recording(
    gated_home: Gated, models: tuple | None, tracker: dict, message: str
) -> None:
    g = gated_home
    gated = open_gate([g.uri], home=g.home)
    with g.home.open_ledger() as ledger:
        size = ledger.size()
    model = Artifact.from_bytes("m", b"x")
    with pytest.raises(InputError, match=message):
        record_training(g.home, gated, [model] if models is None else models, tracker=tracker)
    with g.home.open_ledger() as ledger:
        assert ledger.size() == size


def test_link_fields_name_both_records(gated_home: Gated) -> None:
    g = gated_home
    gated = open_gate([g.uri], home=g.home)
    fields = link_fields(gate=gated.vsa)
    assert fields == {
        "provgate.gate.log_index": str(gated.vsa.log_index),
        "provgate.gate.envelope_sha256": gated.vsa.envelope_sha256,
        "provgate.gate.uri": gated.vsa.uri,
    }
    assert link_fields() == {}


# -- GatedRun: the lifecycle an integration's training_run inherits ----------------------


class MemoryRun(GatedRun):
    """An in-memory tracker (a double of the hooks, not of the core): what it is shown, in order."""

    LOG_MODEL_HINT = "log one with memory.log(model)"

    def __init__(self, inputs: list[str], home: Home, models: tuple[Artifact, ...] = ()) -> None:
        super().__init__(inputs, home=home)
        self.models = models
        self.events: list[tuple[Any, ...]] = []
        self.tracker_down = False

    def _attach(self) -> None:
        self.events.append(("attach",))

    def _run_label(self) -> str:
        return "memory run m-1"

    def _report(self, step: str, result: str, record: Attestation | None = None) -> None:
        if self.tracker_down:
            raise RuntimeError("tracker down")
        self.events.append((step, result, record.log_index if record else None))

    def _gate_passed(self, gated: GatedInputs) -> None:
        self.events.append(("gate", "passed", gated.vsa.log_index, [p.uri for p in gated.inputs]))

    def _collect(self) -> TrackerRun:
        return TrackerRun(self.models, {"name": "memory", "run_id": "m-1"}, {"lr": 0.1})

    def _link(self, training: Attestation, gate: Attestation) -> None:
        self.events.append(("link", training.log_index, gate.log_index))

    def _detach(self, *, failed: bool) -> None:
        self.events.append(("detach", failed))


def _size(home: Home) -> int:
    with home.open_ledger() as ledger:
        return ledger.size()


def test_gated_run_gates_before_the_training_code_and_records_after_it(gated_home: Gated) -> None:
    g = gated_home
    model = Artifact.from_bytes("clf", b"weights")
    run = MemoryRun([g.uri], g.home, models=(model,))
    with run as entered:
        assert entered is run
        assert run.gated is not None
        vsa = run.gated.vsa.log_index
        assert run.events == [("attach",), ("gate", "passed", vsa, [g.uri])]
        assert run.attestation is None
    att = run.attestation
    assert att is not None
    assert run.events[2:] == [("link", att.log_index, vsa), ("detach", False)]
    _, statement = _entry(g.home, att.log_index)
    build = statement["predicate"]["buildDefinition"]
    assert build["internalParameters"]["orchestrator"] == {"name": "memory", "run_id": "m-1"}
    assert build["externalParameters"]["parameters"] == {"lr": 0.1, "inputs": [g.uri]}
    assert build["externalParameters"]["step"] == "train"
    assert "startedOn" in statement["predicate"]["runDetails"]["metadata"]
    assert statement["subject"] == [{"name": "clf", "digest": {"sha256": model.sha256}}]


def test_gated_run_records_nothing_when_refused_when_training_raises_or_without_a_model(
    gated_home: Gated,
) -> None:
    g = gated_home
    before = _size(g.home)
    model = Artifact.from_bytes("m", b"x")
    ran = []
    refused_run = MemoryRun(["provgate://demo/main"], g.home, models=(model,))
    with pytest.raises(GateRefused, match="unpinned") as refused, refused_run:
        ran.append(True)
    assert ran == []
    vsa = refused.value.decision.vsa.log_index  # type: ignore[attr-defined]
    assert refused_run.events == [("attach",), ("gate", "refused", vsa), ("detach", True)]
    assert _size(g.home) == before + 1  # the refusal only

    raising = MemoryRun([g.uri], g.home, models=(model,))
    with pytest.raises(ValueError, match="diverged"), raising:
        raise ValueError("training diverged")
    assert raising.events[2:] == [("training", "not-recorded", None), ("detach", True)]
    assert raising.attestation is None

    empty = MemoryRun([g.uri], g.home)
    no_model = r"^memory run m-1 logged no model, so there is nothing to record: log one with"
    with pytest.raises(InputError, match=no_model), empty:
        pass
    assert empty.events[2:] == [("training", "not-recorded", None), ("detach", True)]
    assert _size(g.home) == before + 3  # and one passed gate decision each, no training


def test_gated_run_keeps_the_training_error_when_the_tracker_fails_too(
    gated_home: Gated, caplog: pytest.LogCaptureFixture
) -> None:
    g = gated_home
    run = MemoryRun([g.uri], g.home)
    run.tracker_down = True  # reports fail; entering reports nothing when the gate passes
    with pytest.raises(ValueError, match="diverged"), run:
        raise ValueError("training diverged")
    assert run.events[-1] == ("detach", True)
    assert "could not mark memory run m-1 as not recorded: tracker down" in caplog.text
    assert caplog.records[-1].name == __name__  # the integration's logger


def test_gated_run_refuses_a_single_uri_before_anything_runs(gated_home: Gated) -> None:
    with pytest.raises(InputError, match="a list of snapshot URIs"):
        MemoryRun(gated_home.uri, gated_home.home)  # type: ignore[arg-type]
