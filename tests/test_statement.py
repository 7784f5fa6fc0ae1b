"""Statements, predicate builders, their JSON Schemas, and strict parsing."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prov_core.canonical import canonical_json
from prov_core.errors import FormatError, InputError, LicenseError, ProvgateError
from prov_core.statement import (
    FEDERATED_UPDATE_V1,
    INFERENCE_V1,
    INGEST_V1,
    KEY_EVENT_V1,
    SLSA_PROVENANCE_V1,
    SLSA_VSA_V1,
    SNAPSHOT_V1,
    STATEMENT_TYPE,
    ClientData,
    FederatedUpdatePredicate,
    InferencePredicate,
    ManifestSummary,
    PolicyDecision,
    Provenance,
    ResourceDescriptor,
    RetrievedChunk,
    SampleSummary,
    SnapshotPredicate,
    Statement,
    Subject,
    VerificationSummary,
    attestation_ref,
    ingest_predicate,
    key_event_predicate,
    rfc3339,
    spdx_expression,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"
H1, H2, H3, H4 = ("1" * 64, "2" * 64, "3" * 64, "4" * 64)
WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def ingest() -> Any:
    return ingest_predicate(
        source_uri="https://example.org/reviews.parquet",
        issuer="Example Org",
        retrieved_at=WHEN,
        collection_method="download",
        license="cc-by-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        origin_geography="DE",
        confidentiality="public",
        consent_location="https://example.org/consent",
        intended_use="sentiment classifier training",
        collector="alice@worker-1",
        samples={"count": 3, "algorithm": "blake3", "leafEncoding": "row-v1", "root": H1},
        manifest={"blake3": H2, "files": 1, "bytes": 2048},
    )


def snapshot() -> SnapshotPredicate:
    return SnapshotPredicate(
        store="lakefs",
        repository="reviews",
        commit_id="c" * 64,
        manifest=ManifestSummary(files=2, total_bytes=4096, root=H2),
        derived_from=[attestation_ref(H3, uri="provgate+log://origin/4")],
        ref="main",
        committed_at=WHEN,
    )


def inference() -> InferencePredicate:
    return InferencePredicate(
        model=ResourceDescriptor(name="sentiment", digest={"sha256": H4}),
        training_attestation=attestation_ref(H3),
        prompt_digest={"sha256": H1},
        answer_digest={"sha256": H2, "blake3": H3},
        decision=PolicyDecision(allowed=False, policies=["licensed"], reasons=["chunk 2: NC"]),
        retrieved=[
            RetrievedChunk(
                digest={"blake3": H1},
                repository="reviews",
                commit_id="c" * 64,
                path="docs/a.txt",
                chunk_id="a.txt#0",
                ingest_record=attestation_ref(H2),
            )
        ],
        invocation_id="run-1",
        answered_at=WHEN,
    )


def key_event() -> Any:
    return key_event_predicate(event="rotated", keyid=H1, time=WHEN, new_keyid=H2)


def federated_update() -> FederatedUpdatePredicate:
    return FederatedUpdatePredicate(
        federation="fedavg-demo",
        round=2,
        client_id="client-a",
        base_model=H1,
        data=[
            ClientData(
                snapshot="provgate://client-a/" + "c" * 64,
                root=H2,
                record=ResourceDescriptor(
                    name="attestation:7",
                    uri="provgate+log://origin/7",
                    digest={"sha256": H3},
                    media_type="application/vnd.dsse.envelope.v1+json",
                    annotations={"logIndex": 7, "predicateType": SNAPSHOT_V1},
                ),
            )
        ],
        update_blake3=H4,
        update_sha256=H1,
        update_size=24,
        examples=40,
        trained_at=WHEN,
        parameters={"epochs": 5, "learningRate": 0.1},
    )


BUILDERS = {
    FEDERATED_UPDATE_V1: ("federated-update-v1.json", federated_update),
    INGEST_V1: ("ingest-v1.json", ingest),
    SNAPSHOT_V1: ("snapshot-v1.json", snapshot),
    INFERENCE_V1: ("inference-v1.json", inference),
    KEY_EVENT_V1: ("key-event-v1.json", key_event),
}


def validator(schema_file: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def statement_bytes(ptype: str, pred: Any, /, **override: Any) -> bytes:
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "x", "digest": {"sha256": H1}}],
        "predicateType": ptype,
        "predicate": pred,
    }
    doc.update(override)
    return json.dumps(doc).encode()


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("predicate_type", sorted(BUILDERS))
def test_builder_output_validates_against_its_schema(predicate_type: str) -> None:
    schema_file, build = BUILDERS[predicate_type]
    predicate = build()
    assert predicate.predicate_type == predicate_type
    validator(schema_file).validate(predicate.to_dict())


@pytest.mark.parametrize("predicate_type", sorted(BUILDERS))
def test_schema_and_parser_both_refuse_a_missing_required_field(predicate_type: str) -> None:
    schema_file, build = BUILDERS[predicate_type]
    v = validator(schema_file)
    good = build().to_dict()
    for field in v.schema["required"]:
        bad = {k: val for k, val in good.items() if k != field}
        assert not v.is_valid(bad), field
        with pytest.raises(FormatError, match=f"statement.predicate.{field}: required"):
            Statement.parse(statement_bytes(predicate_type, bad))


def test_schema_and_parser_agree_on_bad_values() -> None:
    cases: list[tuple[str, str, Any, str]] = [
        (INGEST_V1, "samples", {"count": -1}, "samples.count"),
        (INGEST_V1, "retrievedAt", "yesterday", "retrievedAt"),
        (INGEST_V1, "confidentiality", "secret", "confidentiality"),
        (SNAPSHOT_V1, "derivedFrom", [{"name": "no uri or digest"}], "derivedFrom[0]"),
        (INFERENCE_V1, "answer", {"digest": {"sha256": "XYZ"}}, "answer.digest.sha256"),
        (KEY_EVENT_V1, "event", "lost", "event"),
        (FEDERATED_UPDATE_V1, "client", {"id": "a/b"}, "client.id"),
        (FEDERATED_UPDATE_V1, "round", -1, "round"),
        (FEDERATED_UPDATE_V1, "data", [], "data"),
        (
            FEDERATED_UPDATE_V1,
            "update",
            {"digest": {"blake3": H1}, "size": 1},
            "update.digest.sha256",
        ),
    ]
    for predicate_type, field, value, path in cases:
        schema_file, build = BUILDERS[predicate_type]
        good = build().to_dict()
        bad = copy.deepcopy(good)
        if field == "samples":
            bad["samples"].update(value)
        else:
            bad[field] = value
        assert not validator(schema_file).is_valid(bad), path
        with pytest.raises(FormatError, match=re.escape(f"statement.predicate.{path}:")):
            Statement.parse(statement_bytes(predicate_type, bad))


def test_key_event_rules_in_schema_and_parser() -> None:
    v = validator("key-event-v1.json")
    rotation = key_event().to_dict()
    del rotation["newKeyid"]
    revocation = {"event": "revoked", "keyid": H1, "time": "2025-01-01T00:00:00Z"}
    for bad in (rotation, revocation):
        assert not v.is_valid(bad)
        with pytest.raises(FormatError):
            Statement.parse(statement_bytes(KEY_EVENT_V1, bad))


# ---------------------------------------------------------------- builders


def test_ingest_predicate_fields() -> None:
    d = ingest().to_dict()
    assert d["license"] == {
        "spdx": "CC-BY-4.0",
        "url": "https://creativecommons.org/licenses/by/4.0/",
    }
    assert d["source"] == {"uri": "https://example.org/reviews.parquet", "issuer": "Example Org"}
    assert d["retrievedAt"] == "2025-01-02T03:04:05Z"
    assert d["samples"] == {"count": 3, "algorithm": "blake3", "leafEncoding": "row-v1", "root": H1}
    assert d["manifest"] == {"algorithm": "blake3", "root": H2, "files": 1, "totalBytes": 2048}
    assert d["collector"] == {"id": "alice@worker-1"}


def test_provenance_uses_slsa_field_names_verbatim() -> None:
    p = Provenance(
        build_type="https://provgate.dev/step/v1",
        external_parameters={"step": "clean"},
        internal_parameters={"code": {"commit": "abc"}},
        builder_id="https://provgate.dev/builder/dagster",
        builder_version={"provgate": "0.1.0"},
        resolved_dependencies=[ResourceDescriptor(uri="lakefs://r/c", digest={"sha256": H1})],
        byproducts=[ResourceDescriptor(name="out", digest={"sha256": H2})],
        invocation_id="run-7",
        started_on=WHEN,
        finished_on=WHEN + timedelta(seconds=1, microseconds=5),
    )
    d = p.to_dict()
    assert set(d) == {"buildDefinition", "runDetails"}
    assert set(d["buildDefinition"]) == {
        "buildType",
        "externalParameters",
        "internalParameters",
        "resolvedDependencies",
    }
    assert d["runDetails"]["builder"] == {
        "id": "https://provgate.dev/builder/dagster",
        "version": {"provgate": "0.1.0"},
    }
    assert d["runDetails"]["metadata"] == {
        "invocationId": "run-7",
        "startedOn": "2025-01-02T03:04:05Z",
        "finishedOn": "2025-01-02T03:04:06.000005Z",
    }
    st_ = Statement.of([Subject("out", H2)], p)
    assert Statement.parse(st_.canonical_bytes()).predicate == d


def test_federated_update_builder_checks_its_arguments() -> None:
    good = federated_update()
    d = good.to_dict()
    assert d["client"] == {"id": "client-a"}
    assert d["update"] == {"digest": {"blake3": H4, "sha256": H1}, "size": 24, "examples": 40}
    assert d["data"][0]["record"]["annotations"]["logIndex"] == 7
    assert Statement.parse(statement_bytes(FEDERATED_UPDATE_V1, d)).predicate == d
    for change, message in (
        ({"client_id": "../b"}, "client id"),
        ({"federation": ""}, "federation"),
        ({"round": -1}, "round"),
        ({"examples": 0}, "examples"),
        ({"update_blake3": "XY"}, "update BLAKE3"),
        ({"data": []}, "at least one ClientData"),
        ({"trained_at": "yesterday"}, "RFC 3339"),
    ):
        with pytest.raises(InputError, match=message):
            dataclasses.replace(good, **change)
    record = good.data[0].record
    with pytest.raises(InputError, match=r"annotations\.logIndex"):
        ClientData("provgate://a/" + "c" * 64, H2, dataclasses.replace(record, annotations={}))


def test_vsa_builder() -> None:
    vsa = VerificationSummary(
        verifier_id="https://provgate.dev/gate",
        time_verified=WHEN,
        resource_uri="lakefs://reviews/" + "c" * 64,
        policy=ResourceDescriptor(uri="file://policy.cel", digest={"sha256": H1}),
        passed=False,
        verified_levels=["PROVGATE_CUSTODY_VERIFIED"],
        input_attestations=[attestation_ref(H2)],
    )
    d = vsa.to_dict()
    assert d["verificationResult"] == "FAILED"
    assert d["inputAttestations"][0]["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    parsed = Statement.parse(Statement.of([Subject("snap", H3)], vsa).canonical_bytes())
    assert parsed.predicate_type == SLSA_VSA_V1


def test_inference_keeps_prompt_out_by_default() -> None:
    d = inference().to_dict()
    assert d["prompt"] == {"digest": {"sha256": H1}}
    assert d["model"]["trainingAttestation"]["digest"] == {"sha256": H3}
    assert d["retrieved"][0]["snapshot"] == {
        "repository": "reviews",
        "commitId": "c" * 64,
        "path": "docs/a.txt",
    }
    assert d["policy"]["decision"] == "block"


def test_key_event_subject_is_the_key() -> None:
    event = key_event()
    assert event.subject() == Subject(name=f"key:{H1}", sha256=H1)
    with pytest.raises(InputError, match="new keyid"):
        key_event_predicate(event="rotated", keyid=H1, time=WHEN)
    with pytest.raises(InputError, match="reason"):
        key_event_predicate(event="revoked", keyid=H1, time=WHEN)
    with pytest.raises(InputError, match="not one of"):
        key_event_predicate(event="lost", keyid=H1, time=WHEN)


def test_builders_refuse_bad_arguments() -> None:
    with pytest.raises(InputError, match="64 lowercase hex"):
        Subject("x", "ABCD")
    with pytest.raises(InputError, match="64 lowercase hex"):
        SampleSummary(count=1, root="00", leaf_encoding="row-v1")
    with pytest.raises(InputError, match="non-negative"):
        SampleSummary(count=-1, root=H1, leaf_encoding="row-v1")
    with pytest.raises(InputError, match="uri or a digest"):
        ResourceDescriptor(name="nothing")
    with pytest.raises(InputError, match="lowercase hex"):
        ResourceDescriptor(digest={"sha256": "not hex"})
    with pytest.raises(InputError, match="confidentiality"):
        ingest_predicate(
            source_uri="s",
            retrieved_at=WHEN,
            collection_method="m",
            license="MIT",
            collector="c",
            samples=SampleSummary(1, H1, "row-v1"),
            confidentiality="top-secret",
        )
    with pytest.raises(InputError, match="lacks 'root'"):
        SampleSummary.from_mapping({"count": 1, "leafEncoding": "x"})
    with pytest.raises(InputError, match="at least one subject"):
        Statement((), INGEST_V1, {})


def test_rfc3339() -> None:
    assert rfc3339(datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-01-02T03:04:05Z"
    )
    assert rfc3339("2025-01-02T03:04:05.123456789+01:00") == "2025-01-02T03:04:05.123456789+01:00"
    with pytest.raises(InputError, match="no time zone"):
        rfc3339(datetime(2025, 1, 2))
    for bad in ("2025-01-02", "2025-13-02T00:00:00Z", "2025-01-02T03:04:05"):
        with pytest.raises(InputError, match="RFC 3339"):
            rfc3339(bad)


# ---------------------------------------------------------------- licenses


@pytest.mark.parametrize(
    ("expression", "normalized"),
    [
        ("mit", "MIT"),
        ("Apache-2.0 or mit", "Apache-2.0 OR MIT"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0",
         "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        ("LicenseRef-acme-internal", "LicenseRef-acme-internal"),
        ("LicenseRef-acme AND cc0-1.0", "LicenseRef-acme AND CC0-1.0"),
        ("DocumentRef-spdx-a:LicenseRef-x", "DocumentRef-spdx-a:LicenseRef-x"),
    ],
)  # fmt: skip
def test_spdx_expressions_normalize(expression: str, normalized: str) -> None:
    assert spdx_expression(expression) == normalized


def test_unknown_license_names_the_id_and_suggests_licenseref() -> None:
    with pytest.raises(LicenseError, match=r"'FooBar-1\.0'.*LicenseRef-") as info:
        spdx_expression("MIT OR FooBar-1.0")
    assert "'MIT'" not in str(info.value)


@pytest.mark.parametrize("expression", ["", "  ", "MIT AND (", "MIT OR", "MIT WITH MIT", "AND"])
def test_malformed_license_expressions(expression: str) -> None:
    with pytest.raises(LicenseError):
        spdx_expression(expression)


def test_ingest_refuses_unknown_license() -> None:
    with pytest.raises(LicenseError, match="NotALicense"):
        ingest_predicate(
            source_uri="s",
            retrieved_at=WHEN,
            collection_method="m",
            license="NotALicense",
            collector="c",
            samples=SampleSummary(1, H1, "row-v1"),
        )


# ------------------------------------------------------------------ parsing


def test_statement_round_trip_and_canonical_bytes() -> None:
    stmt = Statement.of([Subject("reviews", H1), Subject("docs", H2)], ingest())
    data = stmt.canonical_bytes()
    assert data == canonical_json(stmt.to_dict())
    assert data.startswith(b'{"_type":"https://in-toto.io/Statement/v1","predicate":{')
    parsed = Statement.parse(data)
    assert parsed == stmt
    assert parsed.raw == data
    assert parsed.canonical_bytes() == data


def test_parse_keeps_the_original_bytes() -> None:
    data = json.dumps(Statement.of([Subject("r", H1)], ingest()).to_dict(), indent=3).encode()
    parsed = Statement.parse(data)
    assert parsed.raw == data
    assert parsed.canonical_bytes() != data


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"_type": "https://in-toto.io/Statement/v0.1"}, "statement._type"),
        ({"subject": []}, "statement.subject: expected at least 1"),
        ({"subject": [{"name": "x", "digest": {"sha256": H1, "blake3": H2}}]},
         "statement.subject\\[0\\].digest.blake3: subjects carry sha256 only"),
        ({"subject": [{"name": "x", "digest": {"sha256": "A" * 64}}]},
         "statement.subject\\[0\\].digest.sha256"),
        ({"subject": [{"name": "", "digest": {"sha256": H1}}]}, "statement.subject\\[0\\].name"),
        ({"subject": [{"digest": {"sha256": H1}}]}, "statement.subject\\[0\\].name: required"),
        ({"predicateType": 7}, "statement.predicateType: expected a string"),
        ({"predicate": []}, "statement.predicate: expected an object"),
    ],
)  # fmt: skip
def test_parse_names_the_bad_field(override: dict[str, Any], path: str) -> None:
    with pytest.raises(FormatError, match=path):
        Statement.parse(statement_bytes(INGEST_V1, ingest().to_dict(), **override))


def test_parse_checks_slsa_provenance_shape() -> None:
    bad = {"buildDefinition": {"buildType": "t"}, "runDetails": {"builder": {"id": "b"}}}
    with pytest.raises(
        FormatError, match=r"statement\.predicate\.buildDefinition\.externalParameters: required"
    ):
        Statement.parse(statement_bytes(SLSA_PROVENANCE_V1, bad))


def test_parse_accepts_unknown_fields_and_unknown_predicate_types() -> None:
    pred = ingest().to_dict() | {"futureField": {"x": 1}}
    assert Statement.parse(statement_bytes(INGEST_V1, pred)).predicate["futureField"] == {"x": 1}
    other = Statement.parse(statement_bytes("https://example.com/custom/v1", {"any": 1}))
    assert other.predicate == {"any": 1}


def test_parse_does_not_check_the_license_list() -> None:
    # A record signed when the SPDX list had an id this installation lacks still parses.
    pred = ingest().to_dict()
    pred["license"]["spdx"] = "Some-Future-License-9.0"
    assert Statement.parse(statement_bytes(INGEST_V1, pred)).predicate_type == INGEST_V1


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_parse_fuzz_bytes(data: bytes) -> None:
    with contextlib.suppress(ProvgateError):
        Statement.parse(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


_VALID = {
    t: json.loads(statement_bytes(t, build().to_dict())) for t, (_, build) in BUILDERS.items()
}


@given(st.sampled_from(sorted(_VALID)), st.data(), json_values)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_parse_fuzz_mutated_statements(predicate_type: str, data: Any, replacement: Any) -> None:
    doc = copy.deepcopy(_VALID[predicate_type])
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    try:
        raw = json.dumps(doc).encode("utf-8", "surrogatepass")
    except ValueError:  # NaN etc. - json.dumps writes them, parse must refuse
        return
    try:
        parsed = Statement.parse(raw)
    except ProvgateError:
        return
    assert parsed.raw == raw


def test_public_surface_is_pinned() -> None:
    import prov_core.statement as module

    assert sorted(module.__all__) == [
        "ClientData",
        "Confidentiality",
        "DSSE_MEDIA_TYPE",
        "FEDERATED_UPDATE_V1",
        "FederatedUpdatePredicate",
        "INFERENCE_V1",
        "INGEST_V1",
        "IN_TOTO_PAYLOAD_TYPE",
        "InferencePredicate",
        "IngestPredicate",
        "KEY_EVENT_V1",
        "KeyEventKind",
        "KeyEventPredicate",
        "ManifestSummary",
        "PROVGATE_PREDICATE_TYPES",
        "PolicyDecision",
        "Predicate",
        "Provenance",
        "ResourceDescriptor",
        "RetrievedChunk",
        "SLSA_PROVENANCE_V1",
        "SLSA_VSA_V1",
        "SNAPSHOT_V1",
        "STATEMENT_TYPE",
        "SampleSummary",
        "SnapshotPredicate",
        "Statement",
        "Subject",
        "VerificationSummary",
        "attestation_ref",
        "check_identifier",
        "ingest_predicate",
        "key_event_predicate",
        "rfc3339",
        "spdx_expression",
    ]
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert defined <= set(module.__all__)
