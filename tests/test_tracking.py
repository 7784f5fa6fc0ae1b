"""prov_core.tracking: the gate in front of a tracker run and the training record after it.

The MLflow and W&B integrations test the tracker side with the real libraries;
this is the shared, tracker-neutral part on a real home (ledger, store, gate).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prov_core.errors import GateRefused, InputError
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.records import decode_entry
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.statement import SLSA_PROVENANCE_V1, SLSA_VSA_V1
from prov_core.step import TRAINING_BUILD_TYPE, Artifact
from prov_core.tracking import link_fields, open_gate, record_training

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
