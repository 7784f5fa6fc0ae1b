"""OpenLineage export on a real ledger: ingest -> clean -> snapshot -> gate -> train -> answer.

Every event is validated against the official OpenLineage JSON Schemas read
from ``../shared/vendor/openlineage/`` (never copied into the project; no
network), and the custom facets against the schemas in docs/schemas/.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from prov_core.errors import FormatError, InputError
from prov_core.export.openlineage import (
    ATTESTATION_FACET,
    DIGEST_FACET,
    INSTALL_HINT,
    client_from_config,
    dataset_for_uri,
    emit_openlineage,
    lineage_runs,
    openlineage_dicts,
    openlineage_events,
    openlineage_json_lines,
)
from prov_core.gate import evaluate_gate
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.ledger.base import Ledger
from prov_core.snapshot_record import commit_snapshot
from prov_core.statement import (
    InferencePredicate,
    PolicyDecision,
    ResourceDescriptor,
    RetrievedChunk,
    Statement,
    Subject,
)
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, record_step

from .conftest import REPO, demo_home, require_services, vendor_dir

SCHEMAS = REPO / "docs" / "schemas"
CUSTOM = {
    "https://provgate.dev/schemas/openlineage-attestation-run-facet-v1.json": SCHEMAS
    / "openlineage-attestation-run-facet-v1.json",
    "https://provgate.dev/schemas/openlineage-digest-dataset-facet-v1.json": SCHEMAS
    / "openlineage-digest-dataset-facet-v1.json",
}


# --------------------------------------------------------------------------
# The official schemas, resolved locally


def _openlineage_registry() -> Any:
    """A referencing Registry of the vendored OpenLineage schemas plus ours.

    Without the vendor directory the test skips, visibly; under
    PROVGATE_REQUIRE_SERVICES=1 it fails instead.
    """
    from referencing import Registry, Resource

    vendor = vendor_dir()
    spec = None if vendor is None else vendor / "openlineage"
    if spec is None or not (spec / "OpenLineage.json").is_file():
        reason = (
            "OpenLineage JSON Schemas not found (../shared/vendor/openlineage/OpenLineage.json "
            "or $PROVGATE_VENDOR_DIR/openlineage/): events cannot be validated"
        )
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    files = [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json")), *CUSTOM.values()]
    resources = []
    for path in files:
        resource = Resource.from_contents(json.loads(path.read_text()))
        resources.append((resource.id(), resource))
    return Registry().with_resources(resources)


@pytest.fixture(scope="module")
def registry() -> Any:
    return _openlineage_registry()


def _validate(registry: Any, instance: Any, ref: str) -> None:
    """Validate ``instance`` against the schema at ``ref`` (an absolute URL with a fragment)."""
    from jsonschema import Draft202012Validator

    Draft202012Validator({"$ref": ref}, registry=registry).validate(instance)


# --------------------------------------------------------------------------
# A small real ledger


@dataclass
class Pipeline:
    home: Home
    ledger: Ledger
    ingest: Attestation
    clean: Attestation
    snapshot: int
    commit: str
    gate_ok: int
    gate_refused: int
    train: Attestation
    answer: Attestation
    blocked: Attestation
    cleaned: Path


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with demo_home(tmp_path) as (home, recorder, store, index, data):
        ingest = ingest_path(
            recorder,
            data / "docs",
            IngestRequest(source="https://example.org/docs", license="CC-BY-4.0"),
            index=index,
        ).attestation
        out = tmp_path / "out"
        out.mkdir()
        cleaned = out / "clean.txt"
        docs = sorted((data / "docs").iterdir())
        cleaned.write_text("".join(p.read_text().lower() for p in docs))
        clean = record_step(
            recorder, "clean", inputs=[ingest], outputs=[Artifact.from_path(cleaned)]
        )
        snap = commit_snapshot(recorder, store, "demo", "main", out, prefix="clean", index=index)
        pinned = f"provgate://demo/{snap.commit_id}/clean"
        ok = evaluate_gate([pinned], home=home)
        assert ok.allowed, ok.reasons
        refused = evaluate_gate(["provgate://demo/main/clean"], home=home)
        assert not refused.allowed
        assert ok.vsa is not None
        assert refused.vsa is not None
        model = Artifact.from_bytes("model.bin", b"weights", uri="s3://models/reviews/model.bin")
        train = record_step(
            recorder,
            "train",
            inputs=[snap.attestation, ok.vsa],
            outputs=[model],
            build_type=TRAINING_BUILD_TYPE,
        )

        def answer(allowed: bool) -> Attestation:
            chunk = RetrievedChunk(
                digest={"sha256": hashlib.sha256(b"chunk").hexdigest()},
                repository="demo",
                commit_id=snap.commit_id,
                path="clean/clean.txt",
            )
            predicate = InferencePredicate(
                model=ResourceDescriptor(
                    name="model.bin", uri=model.uri, digest={"sha256": model.sha256}
                ),
                prompt_digest={"sha256": hashlib.sha256(b"q").hexdigest()},
                answer_digest={"sha256": hashlib.sha256(b"a").hexdigest()},
                decision=PolicyDecision(
                    allowed=allowed, reasons=() if allowed else ("chunk from a banned source",)
                ),
                retrieved=[chunk],
                answered_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            )
            statement = Statement(
                subjects=[Subject(name="answer", sha256=hashlib.sha256(b"a").hexdigest())],
                predicate_type=predicate.predicate_type,
                predicate=predicate.to_dict(),
            )
            return recorder.record(statement)

        yield Pipeline(
            home=home,
            ledger=recorder.ledger,
            ingest=ingest,
            clean=clean,
            snapshot=snap.log_index,
            commit=snap.commit_id,
            gate_ok=ok.vsa.log_index,
            gate_refused=refused.vsa.log_index,
            train=train,
            answer=answer(True),
            blocked=answer(False),
            cleaned=cleaned,
        )


def _by_index(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["run"]["facets"][ATTESTATION_FACET]["logIndex"]: e for e in events}


def _ids(datasets: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """Datasets as (namespace, name, facets), whether they appear as inputs or outputs."""
    return [(d["namespace"], d["name"], d.get("facets")) for d in datasets]


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, facet in event["run"].get("facets", {}).items():
        yield key, facet
    for key, facet in event["job"].get("facets", {}).items():
        yield key, facet
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for key, facet in dataset.get("facets", {}).items():
            yield key, facet


# --------------------------------------------------------------------------
# Validation against the official schemas


def test_every_event_validates_against_the_openlineage_schemas(
    pipeline: Pipeline, registry: Any
) -> None:
    events = openlineage_dicts(pipeline.ledger)
    assert len(events) == pipeline.ledger.size() == 8
    seen: set[str] = set()
    for event in events:
        _validate(
            registry, event, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        )
        assert event["schemaURL"].startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json")
        for key, facet in _facets(event):
            # Every facet names a schema that resolves locally, and validates against it.
            _validate(registry, facet, facet["_schemaURL"])
            assert facet["_producer"] == event["producer"]
            seen.add(key)
    assert {ATTESTATION_FACET, DIGEST_FACET, "version", "jobType", "errorMessage"} <= seen


def test_custom_facets_validate_against_the_published_schemas(
    pipeline: Pipeline, registry: Any
) -> None:
    events = openlineage_dicts(pipeline.ledger)
    for event in events:
        run_facets = {ATTESTATION_FACET: event["run"]["facets"][ATTESTATION_FACET]}
        _validate(registry, run_facets, next(iter(CUSTOM)))
        for dataset in [*event["inputs"], *event["outputs"]]:
            if DIGEST_FACET in dataset["facets"]:
                doc = {DIGEST_FACET: dataset["facets"][DIGEST_FACET]}
                _validate(registry, doc, list(CUSTOM)[1])
    # The published schemas reject what they must.
    from jsonschema import ValidationError

    bad = dict(events[0]["run"]["facets"][ATTESTATION_FACET], envelopeSha256="ABC")
    with pytest.raises(ValidationError):
        _validate(registry, {ATTESTATION_FACET: bad}, next(iter(CUSTOM)))
    no_producer = {k: v for k, v in bad.items() if k != "_producer"}
    no_producer["envelopeSha256"] = "0" * 64
    with pytest.raises(ValidationError, match="_producer"):
        _validate(registry, {ATTESTATION_FACET: no_producer}, next(iter(CUSTOM)))


def test_published_schema_ids_follow_the_pattern() -> None:
    for url, path in CUSTOM.items():
        schema = json.loads(path.read_text())
        assert schema["$id"] == url
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# --------------------------------------------------------------------------
# What the events say


def test_events_map_each_record_kind(pipeline: Pipeline) -> None:
    p = pipeline
    events = _by_index(openlineage_dicts(p.ledger))
    origin = p.home.origin
    assert {e["job"]["namespace"] for e in events.values()} == {origin}

    ingest = events[p.ingest.log_index]
    assert ingest["job"]["name"] == "ingest:docs"
    assert ingest["job"]["facets"]["jobType"]["jobType"] == "INGEST"
    assert ingest["eventType"] == "COMPLETE"
    assert [(d["namespace"], d["name"]) for d in ingest["inputs"]] == [
        ("https://example.org", "docs")
    ]
    [docs] = ingest["outputs"]
    assert (docs["namespace"], docs["name"]) == (origin, "docs")
    digest = docs["facets"][DIGEST_FACET]
    assert digest["sha256"] == p.ingest.subjects[0].sha256
    assert digest["sampleCount"] == 3
    assert len(digest["sampleRoot"]) == 64
    assert docs["facets"]["version"]["datasetVersion"] == f"sha256:{digest['sha256']}"

    # A step's attestation input is the ingest's output: the graph joins.
    clean = events[p.clean.log_index]
    assert clean["job"]["name"] == "clean"
    assert _ids(clean["inputs"]) == _ids(ingest["outputs"])
    [out] = clean["outputs"]
    assert (out["namespace"], out["name"]) == ("file", str(p.cleaned.resolve()))
    assert out["facets"][DIGEST_FACET]["blake3"] == Artifact.from_path(p.cleaned).blake3
    assert out["facets"]["version"]["datasetVersion"] == f"sha256:{p.clean.subjects[0].sha256}"

    # The snapshot reads the step's output and writes provgate://demo, name "clean".
    snap = events[p.snapshot]
    assert snap["job"]["name"] == "snapshot:demo"
    assert _ids(snap["inputs"]) == _ids(clean["outputs"])
    [snapshot_ds] = snap["outputs"]
    assert (snapshot_ds["namespace"], snapshot_ds["name"]) == ("provgate://demo", "clean")
    assert snapshot_ds["facets"][DIGEST_FACET]["commitId"] == p.commit

    # The gate reads the same dataset, same version; the refusal is a FAIL with reasons.
    ok = events[p.gate_ok]
    assert ok["job"]["name"] == "gate"
    assert ok["eventType"] == "COMPLETE"
    [gated] = ok["inputs"]
    assert (gated["namespace"], gated["name"]) == ("provgate://demo", "clean")
    assert gated["facets"]["version"] == snapshot_ds["facets"]["version"]
    refused = events[p.gate_refused]
    assert refused["eventType"] == "FAIL"
    message = refused["run"]["facets"]["errorMessage"]["message"]
    assert message.startswith("the training gate refused: ")
    assert "main" in message

    train = events[p.train.log_index]
    assert train["job"]["name"] == "train"
    assert train["job"]["facets"]["jobType"]["jobType"] == "TRAINING"
    assert _ids([snapshot_ds])[0] in _ids(train["inputs"])
    assert [(d["namespace"], d["name"]) for d in train["outputs"]] == [
        ("s3://models", "reviews/model.bin")
    ]

    answer = events[p.answer.log_index]
    assert answer["job"]["name"] == "inference:reviews/model.bin"
    assert answer["eventType"] == "COMPLETE"
    assert answer["eventTime"] == "2026-01-02T03:04:05.000Z"
    assert ("provgate://demo", "clean/clean.txt") in {
        (d["namespace"], d["name"]) for d in answer["inputs"]
    }
    blocked = events[p.blocked.log_index]
    assert blocked["eventType"] == "FAIL"
    assert "banned source" in blocked["run"]["facets"]["errorMessage"]["message"]


def test_run_facet_identifies_the_signed_entry(pipeline: Pipeline) -> None:
    ledger = pipeline.ledger
    events = openlineage_dicts(ledger)
    signer_keyid = pipeline.home.signer.keyid
    run_ids = set()
    for i, event in enumerate(events):
        facet = event["run"]["facets"][ATTESTATION_FACET]
        leaf = ledger.entry(i)
        assert facet["logIndex"] == i
        assert facet["envelopeSha256"] == hashlib.sha256(leaf).hexdigest()
        assert facet["keyid"] == signer_keyid
        assert facet["ledgerOrigin"] == pipeline.home.origin
        assert facet["uri"] == f"provgate+log://{pipeline.home.origin}/{i}"
        assert facet["checkpointSize"] == ledger.size()
        assert len(facet["checkpointRootHash"]) == 64
        run_id = uuid.UUID(event["run"]["runId"])
        assert run_id.version == 7
        # The UUIDv7 time is the event time.
        ms = run_id.int >> 80
        when = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
        assert ms == int(when.timestamp() * 1000)
        run_ids.add(run_id)
    assert len(run_ids) == len(events)
    assert events[pipeline.train.log_index]["run"]["facets"][ATTESTATION_FACET][
        "predicateType"
    ] == ("https://slsa.dev/provenance/v1")


def test_export_is_deterministic_and_json_lines(pipeline: Pipeline) -> None:
    lines = list(openlineage_json_lines(pipeline.ledger))
    assert lines == list(openlineage_json_lines(pipeline.ledger))
    assert [json.loads(line) for line in lines] == openlineage_dicts(pipeline.ledger)
    assert all("\n" not in line for line in lines)


def test_a_range_exports_just_those_entries(pipeline: Pipeline) -> None:
    events = openlineage_dicts(pipeline.ledger, 2, 4)
    assert [e["run"]["facets"][ATTESTATION_FACET]["logIndex"] for e in events] == [2, 3]
    assert events == openlineage_dicts(pipeline.ledger)[2:4]
    # A step in the range still joins to an earlier record's outputs.
    i = pipeline.clean.log_index
    [clean] = openlineage_dicts(pipeline.ledger, i, i + 1)
    assert clean["inputs"][0]["name"] == "docs"
    assert list(lineage_runs(pipeline.ledger, 8)) == []


# --------------------------------------------------------------------------
# Through real openlineage-python transports


def test_emit_through_a_file_transport(pipeline: Pipeline, tmp_path: Path) -> None:
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = tmp_path / "events.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    sent = emit_openlineage(pipeline.ledger, 1, 4, transport=transport)
    assert sent == 3
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    emitted = [json.loads(line) for line in lines]
    expected = openlineage_dicts(pipeline.ledger, 1, 4)
    # The client adds its own facets (a client-version tag); ours arrive unchanged.
    assert [e["run"]["runId"] for e in emitted] == [e["run"]["runId"] for e in expected]
    assert [e["run"]["facets"][ATTESTATION_FACET] for e in emitted] == [
        e["run"]["facets"][ATTESTATION_FACET] for e in expected
    ]
    assert [e["outputs"] for e in emitted] == [e["outputs"] for e in expected]


def test_emit_through_a_client_configured_from_a_file(
    pipeline: Pipeline, tmp_path: Path, registry: Any
) -> None:
    path = tmp_path / "events.jsonl"
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {path}\n  append: true\n")
    client = client_from_config(config)
    assert emit_openlineage(pipeline.ledger, client=client) == pipeline.ledger.size()
    for line in path.read_text().splitlines():
        # What the client added on the way (if anything) is still valid OpenLineage.
        _validate(
            registry,
            json.loads(line),
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        )


def test_bad_transport_config_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(InputError, match="cannot read"):
        client_from_config(missing)
    bad = tmp_path / "bad.yml"
    bad.write_text("transport: [1, 2]\n")
    with pytest.raises(InputError, match="'transport' mapping"):
        client_from_config(bad)


# --------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(("start", "stop"), [(10, None), (0, 10), (5, 4), (-1, None), (8, 9)])
def test_a_range_outside_the_log_is_refused(
    pipeline: Pipeline, tmp_path: Path, start: int, stop: int | None
) -> None:
    from openlineage.client.transport.file import FileConfig, FileTransport

    with pytest.raises(
        InputError, match=r"are out of range: the log has 8 entries \(indices 0\.\.7\)"
    ):
        openlineage_dicts(pipeline.ledger, start, stop)
    path = tmp_path / "events.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    with pytest.raises(InputError, match="out of range"):
        emit_openlineage(pipeline.ledger, start, stop, transport=transport)
    assert not path.exists()  # nothing half-sent


def test_an_entry_that_does_not_parse_is_named(tmp_path: Path) -> None:
    from prov_core.ledger.checkpoint import NoteSigner
    from prov_core.ledger.memory import MemoryLedger

    ledger = MemoryLedger("example.org/log", NoteSigner.generate("example.org/log"))
    ledger.append([b'{"payload":"","payloadType":"x","signatures":[]}'])
    with pytest.raises(FormatError, match="log entry 0"):
        openlineage_dicts(ledger)


def test_without_openlineage_python_the_error_names_the_extra(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "openlineage" or m.startswith("openlineage.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "openlineage", None)
    # The pure translation still works...
    assert len(list(lineage_runs(pipeline.ledger))) == 8
    # ...and anything needing openlineage-python says how to get it.
    with pytest.raises(InputError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        list(openlineage_events(pipeline.ledger))
    with pytest.raises(InputError, match="provgate"):
        emit_openlineage(pipeline.ledger)


def test_prov_core_imports_without_openlineage() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['openlineage'] = None; "
        "import prov_core, prov_core.export, prov_core.export.openlineage, prov_core.cli; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("file:///data/x.csv", "file", "/data/x.csv"),
        ("file://host/data/x.csv", "file://host", "/data/x.csv"),
        ("s3://bucket/a/b.parquet", "s3://bucket", "a/b.parquet"),
        ("lakefs://lake/" + "a" * 64 + "/train/", "lakefs://lake", "train"),
        ("provgate://demo/main", "provgate://demo", "/"),
        ("https://example.org/r?x=1", "https://example.org", "r?x=1"),
        ("reviews.csv", "ns", "reviews.csv"),
    ],
)
def test_dataset_naming(uri: str, namespace: str, name: str) -> None:
    dataset = dataset_for_uri(uri, "ns")
    assert (dataset.namespace, dataset.name) == (namespace, name)
    if uri.startswith("lakefs://"):
        assert dataset.commit_id == "a" * 64
