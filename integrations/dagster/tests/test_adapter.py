"""The Dagster adapter, run for real: records, metadata, checks, the gate, partitions."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import SOURCES, World, example
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    JsonMetadataValue,
    TextMetadataValue,
    UrlMetadataValue,
    asset,
    materialize,
)
from prov_dagster import (
    METADATA_KEYS,
    ProvenanceRefused,
    ProvenanceResource,
    provenance_asset,
    provenance_checks,
)

from prov_core.lineage import verify_chain
from prov_core.nodes import attestation_from_dict, verify_node
from prov_core.records import decode_entry
from prov_core.statement import SNAPSHOT_V1
from prov_core.step import TRAINING_BUILD_TYPE

BANNED = str(example.BANNED_POLICY)


def _attestation(mat: Any) -> Any:
    return attestation_from_dict(mat.metadata["provgate/attestation"].value)


def _statement(world: World, log_index: int) -> dict[str, Any]:
    with world.open_home().open_ledger() as ledger:
        return decode_entry(ledger.entry(log_index))[1]


def _inputs(statement: dict[str, Any]) -> list[tuple[int, str]]:
    """(log index, envelope sha256) of every record a step or snapshot names as its input."""
    p = statement["predicate"]
    deps = (
        p["derivedFrom"]
        if statement["predicateType"] == SNAPSHOT_V1
        else p["buildDefinition"]["resolvedDependencies"]
    )
    return sorted((d["annotations"]["logIndex"], d["digest"]["sha256"]) for d in deps)


def _link(a: Any) -> tuple[int, str]:
    return (a.log_index, a.envelope_sha256)


# ---------------------------------------------------------------------------
# The reference pipeline: records linked to their upstream records


def test_every_asset_has_a_verifying_attestation_linked_to_its_upstream(full: World) -> None:
    home = full.open_home()
    raw = {s: _attestation(full.materialization("raw_documents", s)) for s in SOURCES}
    clean = {s: _attestation(full.materialization("clean_corpus", s)) for s in SOURCES}
    snapshot = _attestation(full.materialization("corpus_snapshot"))
    model = _attestation(full.materialization("model"))
    index = _attestation(full.materialization("retrieval_index"))
    answers = _attestation(full.materialization("answers"))
    for a in [*raw.values(), *clean.values(), snapshot, model, index, answers]:
        report = verify_chain(a.log_index, home=home)
        assert report.ok, report.problems
    # Each clean partition read its own source's ingest record, and only that.
    for s in SOURCES:
        assert _inputs(_statement(full, clean[s].log_index)) == [_link(raw[s])]
    # The snapshot derives from the three clean records (by the envelopes they signed).
    assert set(_inputs(_statement(full, snapshot.log_index))) == {_link(c) for c in clean.values()}
    # The model: a training record whose inputs are the gate's PASSED decision and the snapshot.
    training = _statement(full, model.log_index)
    assert training["predicate"]["buildDefinition"]["buildType"] == TRAINING_BUILD_TYPE
    gate_index = int(full.materialization("model").metadata["provgate/gate_vsa_log_index"].value)
    vsa = _statement(full, gate_index)
    assert vsa["predicate"]["verificationResult"] == "PASSED"
    assert [i for i, _ in _inputs(training)] == sorted([gate_index, snapshot.log_index])
    assert _inputs(_statement(full, index.log_index)) == [_link(snapshot)]
    assert _inputs(_statement(full, answers.log_index)) == sorted([_link(model), _link(index)])
    # The orchestrator identity of a record: Dagster's run, asset and partition.
    orch = _statement(full, clean["forum"].log_index)["predicate"]["buildDefinition"][
        "internalParameters"
    ]["orchestrator"]
    code = _statement(full, clean["forum"].log_index)["predicate"]["buildDefinition"][
        "internalParameters"
    ]["code"]
    assert code["function"] == "example_pipelines.dagster_pipeline.clean_corpus"
    assert code["version"] == "1"  # the asset's code_version
    assert orch["name"] == "dagster"
    assert orch["asset_key"] == "clean_corpus"
    assert orch["partition_key"] == "forum"
    assert orch["run_id"] == full.materialization("clean_corpus", "forum").tags.get(
        "dagster/run_id", orch["run_id"]
    )


def test_data_versions_are_provgate_digests_and_flow_downstream(full: World) -> None:
    clean = full.materialization("clean_corpus", "handbook")
    content = clean.metadata["provgate/content_digest"].value
    assert clean.tags["dagster/data_version"] == content
    path = Path(clean.metadata["provgate/outputs"].value["handbook.csv"])
    from prov_core.digest import digest_file

    assert content == digest_file(path)  # the BLAKE3 of the bytes stored
    snap = full.materialization("corpus_snapshot")
    commit = snap.metadata["provgate/snapshot_commit"].value
    assert snap.tags["dagster/data_version"] == commit
    model = full.materialization("model")
    assert model.tags["dagster/input_data_version/corpus_snapshot"] == commit


def test_metadata_entries_are_on_the_materialization_events(full: World) -> None:
    for key, partition in [
        ("raw_documents", "books"),
        ("clean_corpus", "books"),
        ("corpus_snapshot", None),
        ("model", None),
        ("retrieval_index", None),
        ("answers", None),
    ]:
        meta = full.materialization(key, partition).metadata
        assert set(METADATA_KEYS) <= set(meta), key
        a = _attestation(full.materialization(key, partition))
        assert isinstance(meta["provgate/log_index"], TextMetadataValue)
        assert meta["provgate/log_index"].value == str(a.log_index)
        assert meta["provgate/envelope_sha256"].value == a.envelope_sha256
        assert isinstance(meta["provgate/statement"], JsonMetadataValue)
        assert meta["provgate/statement"].value == _statement(full, a.log_index)
        assert isinstance(meta["provgate/lineage"], UrlMetadataValue)
        assert meta["provgate/lineage"].value == f"http://127.0.0.1:8765/records/{a.log_index}"
        assert meta["provgate/samples"].value >= 1
    raw = full.materialization("raw_documents", "forum").metadata
    assert raw["provgate/samples"].value == 11  # rows of forum.csv
    snap = full.materialization("corpus_snapshot").metadata
    assert snap["provgate/snapshot_uri"].value == (
        f"provgate://corpus/{snap['provgate/snapshot_commit'].value}"
    )
    parents = {k: v.value for k, v in snap.items() if k.startswith("provgate/parent/")}
    assert parents == {
        f"provgate/parent/clean_corpus[{s}]": AssetKey("clean_corpus") for s in SOURCES
    }
    answers = full.materialization("answers").metadata
    assert answers["provgate/parent/model"].value == AssetKey("model")


def test_checks_passed_in_the_run(full: World) -> None:
    result = full.check(example.corpus_snapshot, example.model, example.answers)
    assert {k: e.passed for k, e in result.items()} == {
        "corpus_snapshot": True,
        "model": True,
        "answers": True,
    }
    meta = result["model"].metadata
    assert json.loads(json.dumps(meta["provgate/checks"].value))["signature"] == "ok"


def test_answers_with_inference_provenance_block_the_banned_source(full: World) -> None:
    path = Path(full.materialization("answers").metadata["provgate/outputs"].value["answers.json"])
    answers = {a["question"]: a for a in json.loads(path.read_text())}
    reset = answers["How do I reset my router?"]
    assert reset["allowed"]
    assert reset["answer"].startswith("[technical] To reset the router")
    banned = answers["Does the warranty cover water damage?"]
    assert not banned["allowed"]
    assert banned["answer"] is None
    assert banned["sources"] == ["clean/books.csv", "clean/books.csv"]
    assert any("banned-sources" in r for r in banned["reasons"])
    # Both decisions are signed inference records, the block among them.
    for entry, decision in [(reset, "allow"), (banned, "block")]:
        p = _statement(full, entry["record"])["predicate"]
        assert p["policy"]["decision"] == decision


# ---------------------------------------------------------------------------
# provenance_verified fails after tampering


def test_check_fails_after_a_byte_of_a_stored_output_changes(world: World) -> None:
    world.ingest_and_clean("handbook")
    assert world.check(example.clean_corpus)["clean_corpus"].passed
    out = world.workdir / "clean" / "handbook.csv"
    data = bytearray(out.read_bytes())
    data[10] ^= 1
    out.write_bytes(bytes(data))
    evaluation = world.check(example.clean_corpus)["clean_corpus"]
    assert not evaluation.passed
    assert "content: " in evaluation.description
    assert "the stored bytes changed" in evaluation.description
    assert evaluation.metadata["provgate/checks"].value["content"] == "failed"


def test_check_fails_after_a_ledger_entry_changes(world: World) -> None:
    world.ingest_and_clean("handbook")
    a = _attestation(world.materialization("clean_corpus", "handbook"))
    home = world.open_home()
    db = sqlite3.connect(home.ledger_path, isolation_level=None)
    (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (a.log_index,)).fetchone()
    envelope = json.loads(leaf)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["parameters"] = {"x": 1}
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    db.execute(
        "UPDATE entries SET leaf = ? WHERE idx = ?", (json.dumps(envelope).encode(), a.log_index)
    )
    db.close()
    evaluation = world.check(example.clean_corpus)["clean_corpus"]
    assert not evaluation.passed
    checks = evaluation.metadata["provgate/checks"].value
    assert checks["link"] == checks["signature"] == "failed"
    assert "the entry was changed or replaced" in evaluation.description


def test_check_fails_after_a_snapshot_object_changes(world: World) -> None:
    world.ingest_and_clean(*SOURCES)
    world.run([example.corpus_snapshot])
    assert world.check(example.corpus_snapshot)["corpus_snapshot"].passed
    snap = world.materialization("corpus_snapshot").metadata["provgate/statement"].value
    b3 = snap["predicate"]["objects"][0]["blake3"]
    blob = world.home / "store" / "objects" / b3[:2] / b3[2:]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"x")
    evaluation = world.check(example.corpus_snapshot)["corpus_snapshot"]
    assert not evaluation.passed
    assert "changed" in evaluation.description


# ---------------------------------------------------------------------------
# The training gate in Dagster


def _failure(result: Any) -> Any:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data


def _ledger_vsas(world: World) -> list[dict[str, Any]]:
    with world.open_home().open_ledger() as ledger:
        out = []
        for i in range(ledger.size()):
            st = decode_entry(ledger.entry(i))[1]
            if st["predicateType"] == "https://slsa.dev/verification_summary/v1":
                out.append(st)
        return out


def test_training_is_refused_for_a_banned_source_with_the_reasons(world: World) -> None:
    world.ingest_and_clean(*SOURCES)
    world.run([example.corpus_snapshot])
    world.policy = BANNED  # banned after the data was collected
    result = world.run([example.model], raise_on_error=False)
    assert not result.success
    failure = _failure(result)
    assert "the training gate refused the inputs of model" in failure.description
    assert "policy [banned-sources]" in failure.description
    reasons = failure.metadata["provgate/reasons"].value
    assert [r["rule"] for r in reasons] == ["banned-sources"]
    # Recorded as a FAILED decision; no model was recorded.
    assert _ledger_vsas(world)[-1]["predicate"]["verificationResult"] == "FAILED"
    assert world.instance.get_latest_materialization_event(AssetKey("model")) is None
    logs = [
        e.user_message
        for e in world.instance.all_logs(result.run_id)
        if e.dagster_event is None and "provgate gate" in e.user_message
    ]
    assert any("banned-sources" in m for m in logs)


def test_training_is_refused_for_a_branch_ref(world: World) -> None:
    world.ingest_and_clean(*SOURCES)
    world.run([example.corpus_snapshot])

    @provenance_asset(
        name="model_from_branch",
        deps=[example.corpus_snapshot],
        training=True,
        gate_inputs=lambda context, pinned: ["provgate://corpus/main"],
    )
    def model_from_branch(pinned: list[str], workdir: example.Workdir) -> Path:
        raise AssertionError("the gate must refuse before training runs")

    result = world.run([model_from_branch], extra=[model_from_branch], raise_on_error=False)
    assert not result.success
    failure = _failure(result)
    reasons = failure.metadata["provgate/reasons"].value
    assert [(r["code"], r["rule"]) for r in reasons] == [
        ("unpinned", None),
        ("policy", "pinned-inputs"),
    ]
    assert "'main'" in reasons[0]["message"]
    assert "- unpinned: provgate://corpus/main: " in failure.description
    vsa = _ledger_vsas(world)[-1]
    assert vsa["predicate"]["verificationResult"] == "FAILED"
    assert int(failure.metadata["provgate/gate_vsa_log_index"].value) >= 0


def test_refusal_is_a_dagster_failure() -> None:
    refused = ProvenanceRefused("model", ["a", "b"], vsa_log_index=3)
    from dagster import Failure

    assert isinstance(refused, Failure)
    assert refused.reasons == ("a", "b")
    assert "- a\n- b" in refused.description


# ---------------------------------------------------------------------------
# Partitions and re-materializations


def test_partitions_and_rematerializations_are_distinct_linked_records(world: World) -> None:
    world.ingest_and_clean("handbook", "forum")
    first = _attestation(world.materialization("clean_corpus", "forum"))
    other = _attestation(world.materialization("clean_corpus", "handbook"))
    assert first.log_index != other.log_index
    world.run([example.clean_corpus], partition="forum")
    again = _attestation(world.materialization("clean_corpus", "forum"))
    assert again.log_index > first.log_index
    assert again.envelope_sha256 != first.envelope_sha256
    st_first, st_again = _statement(world, first.log_index), _statement(world, again.log_index)
    # The same input (forum's ingest record), the same bytes, a new run; linked to the first.
    assert _inputs(st_again) == _inputs(st_first)
    orch = st_again["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]
    assert orch["supersedes"] == {
        "log_index": first.log_index,
        "envelope_sha256": first.envelope_sha256,
    }
    assert (
        orch["run_id"]
        != st_first["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]["run_id"]
    )
    assert (
        world.materialization("clean_corpus", "forum").tags["dagster/data_version"]
        == st_again["predicate"]["runDetails"]["byproducts"][0]["annotations"]["blake3"]
    )
    home = world.open_home()
    for a in (first, other, again):
        assert verify_node(a, home=home).ok


# ---------------------------------------------------------------------------
# Misuse fails the step with one clear message


def test_an_upstream_without_provenance_fails_the_step(tmp_path: Path) -> None:
    @asset
    def plain() -> int:
        return 1

    @provenance_asset(deps=[plain])
    def downstream(context: AssetExecutionContext) -> Path:
        out = tmp_path / "x.txt"
        out.write_text("x")
        return out

    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    resources = {"provenance": ProvenanceResource(home=str(tmp_path / "home"))}
    result = materialize(
        [plain, downstream], resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert "upstream asset plain has no provgate attestation" in _failure(result).description


def test_a_return_value_that_is_not_a_file_fails_the_step(tmp_path: Path) -> None:
    @provenance_asset
    def numbers() -> int:
        return 3

    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    resources = {"provenance": ProvenanceResource(home=str(tmp_path / "home"))}
    result = materialize([numbers], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert "numbers returned int" in _failure(result).description
    assert not any(
        e.event_type == DagsterEventType.ASSET_MATERIALIZATION for e in result.all_events
    )


def test_checks_only_cover_asset_definitions() -> None:
    checks = provenance_checks([example.model, "not an asset"])
    assert [c.check_keys for c in checks] == [checks[0].check_keys]
    (key,) = checks[0].check_keys
    assert key.name == "provenance_verified"
    assert key.asset_key == AssetKey("model")


def test_user_function_signature_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "o.txt"

    def f(context, provenance):  # type: ignore[no-untyped-def]  # no annotations at all
        out.write_text(f"{context.asset_key.to_user_string()} {provenance.home}")
        return out

    wrapped = provenance_asset(name="sig")(f)
    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    resources = {"provenance": ProvenanceResource(home=str(tmp_path / "home"))}
    assert materialize([wrapped], resources=resources, instance=instance).success
    assert out.read_text() == f"sig {tmp_path / 'home'}"


def test_the_demo_runner_prints_the_verified_lineage(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PROVGATE_SIGNING_KEY")}
    result = subprocess.run(
        [sys.executable, str(REPO / "example_pipelines" / "run_dagster.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = result.stdout + result.stderr  # the CLI's human output goes to stderr
    assert result.returncode == 0, out
    assert out.count("provenance_verified passed") == 4
    assert "BLOCKED: policy [banned-sources]" in out
    assert "OK: chain of custody of 8: 9 record(s) checked" in out  # the model
    assert "OK: chain of custody of 10: 10 record(s) checked" in out  # an allowed answer
    assert "ingest https://books3.example/support-excerpts  CC0-1.0" in out
    assert "dagster dev -f example_pipelines/dagster_pipeline.py" in out
