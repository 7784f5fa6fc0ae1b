"""prov_mlflow.training_run against a real MLflow tracking store and model registry (SQLite).

The gated training of the ``trained`` fixture (conftest) is shared by the read-only
tests; the refusal and failure cases make their own runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
from _world import MODEL_NAME, Trained, World
from mlflow import MlflowClient
from prov_mlflow import SOURCE_TYPE, SnapshotSource, training_run

from prov_core.digest import digest_path
from prov_core.errors import GateRefused, InputError
from prov_core.step import TRAINING_BUILD_TYPE


def test_the_active_run_is_gated_and_left_to_its_owner(trained: Trained, world: World) -> None:
    assert trained.run.run_id == trained.outer_run_id
    assert trained.outer_active_after
    assert trained.run.gated is not None
    assert trained.run.gated.decision.allowed
    # two records, one after the other: the gate's decision, then the training step
    assert trained.run.attestation is not None
    assert trained.run.gated.vsa.log_index == trained.before
    assert trained.run.attestation.log_index == trained.before + 1


def test_each_pinned_snapshot_is_a_dataset_input_with_our_digest(
    trained: Trained, world: World
) -> None:
    run = MlflowClient().get_run(trained.run.run_id)
    (dataset_input,) = run.inputs.dataset_inputs
    ds = dataset_input.dataset
    pinned = trained.run.gated.inputs[0]  # type: ignore[union-attr]
    _, snapshot = world.entry(world.snapshot)
    manifest_sha256 = snapshot["subject"][0]["digest"]["sha256"]
    assert pinned.manifest_sha256 == manifest_sha256
    assert ds.digest == manifest_sha256[:36]
    assert ds.source_type == SOURCE_TYPE
    assert json.loads(ds.source) == {"uri": world.pinned}
    assert ds.name == f"corpus@{world.commit[:12]}"
    profile = json.loads(ds.profile)["provgate"]
    assert profile["manifest_sha256"] == manifest_sha256
    assert profile["commit"] == world.commit
    assert profile["record"] == world.snapshot
    leaf, _ = world.entry(world.snapshot)
    assert profile["record_sha256"] == hashlib.sha256(leaf).hexdigest()
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "training"}
    # MLflow rebuilds our source from the run (entry point mlflow.dataset_source)
    source = mlflow.data.get_source(dataset_input)
    assert isinstance(source, SnapshotSource)
    assert source.uri == world.pinned


def test_the_training_record_names_the_run_and_the_stored_model_bytes(
    trained: Trained, world: World
) -> None:
    att = trained.run.attestation
    assert att is not None
    leaf, statement = world.entry(att.log_index)
    assert hashlib.sha256(leaf).hexdigest() == att.envelope_sha256
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == TRAINING_BUILD_TYPE
    model_id = trained.model_info.model_id
    tracker = build["internalParameters"]["orchestrator"]
    assert tracker["name"] == "mlflow"
    assert tracker["run_id"] == trained.run.run_id
    assert tracker["models"] == [{"model_id": model_id, "name": "model"}]
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == trained.run.run_id
    assert build["externalParameters"]["parameters"] == {
        "max_iter": "1000",
        "inputs": [world.pinned],
    }
    # the input is the gate's decision, which names the snapshot record
    (dep,) = build["resolvedDependencies"]
    assert dep["digest"]["sha256"] == trained.run.gated.vsa.envelope_sha256  # type: ignore[union-attr]
    # the output is the model directory exactly as the artifact store holds it, digested
    # here straight from disk (not through the integration's download)
    stored = Path(MlflowClient().get_logged_model(model_id).artifact_location)
    tree = digest_path(stored)
    assert (stored / "model.pkl").is_file()
    (out,) = statement["predicate"]["runDetails"]["byproducts"]
    assert out["annotations"]["blake3"] == tree.blake3
    assert out["uri"] == f"models:/{model_id}"
    assert statement["subject"] == [{"name": "model", "digest": {"sha256": tree.sha256_subject}}]


def test_run_model_and_version_carry_the_records_log_index_and_envelope(
    trained: Trained, world: World
) -> None:
    client = MlflowClient()
    att, vsa = trained.run.attestation, trained.run.gated.vsa  # type: ignore[union-attr]
    assert att is not None
    expected = {
        "provgate.training.log_index": str(att.log_index),
        "provgate.training.envelope_sha256": att.envelope_sha256,
        "provgate.training.uri": att.uri,
        "provgate.gate.log_index": str(vsa.log_index),
        "provgate.gate.envelope_sha256": vsa.envelope_sha256,
    }
    run_tags = client.get_run(trained.run.run_id).data.tags
    assert expected.items() <= run_tags.items()
    assert run_tags["provgate.gate"] == "passed"
    assert run_tags["provgate.training"] == "recorded"
    model = trained.run.models[0]
    model_tags = client.get_logged_model(trained.model_info.model_id).tags
    assert expected.items() <= model_tags.items()
    assert model_tags["provgate.model.sha256"] == model.artifact.sha256
    version = client.get_model_version(MODEL_NAME, "1")
    assert expected.items() <= version.tags.items()
    assert version.tags["provgate.model.blake3"] == model.artifact.blake3
    # the tag points at the very record: its ledger entry hashes to the tagged envelope
    leaf, _ = world.entry(int(run_tags["provgate.training.log_index"]))
    assert hashlib.sha256(leaf).hexdigest() == run_tags["provgate.training.envelope_sha256"]


def test_snapshot_source_load_copies_the_snapshot(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGATE_HOME", str(world.home.path))
    out = Path(SnapshotSource(world.pinned).load(str(tmp_path / "copy")))
    assert sorted(p.name for p in out.iterdir()) == ["forum.csv", "handbook.csv"]
    assert (out / "forum.csv").read_bytes() == (world.root / "corpus" / "forum.csv").read_bytes()


# -- refusals and failures: nothing is recorded but the gate's decision -------------------


def _only_run(experiment_id: str, run_name: str) -> Any:
    (run,) = MlflowClient().search_runs([experiment_id], f"attributes.run_name = '{run_name}'")
    return run


def test_a_refused_gate_tags_the_run_and_runs_no_training_code(
    world: World, experiment_id: str
) -> None:
    before = world.ledger_size()
    ran = []
    with (
        pytest.raises(GateRefused, match="unpinned") as refused,
        training_run(["provgate://corpus/main"], home=world.home, run_name="refused"),
    ):
        ran.append(True)
    assert ran == []
    vsa = refused.value.decision.vsa  # type: ignore[attr-defined]
    assert world.ledger_size() == before + 1 == vsa.log_index + 1  # the refusal only
    _, statement = world.entry(vsa.log_index)
    assert statement["predicate"]["verificationResult"] == "FAILED"
    run = _only_run(experiment_id, "refused")
    assert run.info.status == "FAILED"  # this context started the run, and ended it
    assert run.data.tags["provgate.gate"] == "refused"
    assert run.data.tags["provgate.gate.log_index"] == str(vsa.log_index)
    assert run.inputs.dataset_inputs == []
    assert mlflow.active_run() is None


def test_training_code_that_raises_records_no_training(world: World, experiment_id: str) -> None:
    before = world.ledger_size()
    with (
        pytest.raises(ValueError, match="diverged"),
        training_run([world.pinned], home=world.home, run_name="raises"),
    ):
        raise ValueError("training diverged")
    assert world.ledger_size() == before + 1  # the gate's decision only
    run = _only_run(experiment_id, "raises")
    assert run.info.status == "FAILED"
    assert run.data.tags["provgate.training"] == "not-recorded"
    assert len(run.inputs.dataset_inputs) == 1


def test_a_run_that_logs_no_model_says_how_to_log_one(world: World, experiment_id: str) -> None:
    before = world.ledger_size()
    with (
        pytest.raises(InputError, match=r"logged no model.*mlflow\.sklearn\.log_model"),
        training_run([world.pinned], home=world.home, run_name="no-model"),
    ):
        mlflow.log_metric("accuracy", 0.9)
    assert world.ledger_size() == before + 1
    run = _only_run(experiment_id, "no-model")
    assert run.info.status == "FAILED"
    assert run.data.tags["provgate.training"] == "not-recorded"


def test_bad_input_is_refused_before_anything_runs(world: World, experiment_id: str) -> None:
    with pytest.raises(InputError, match="a list of snapshot URIs"):
        training_run(world.pinned, home=world.home)  # type: ignore[arg-type]
    with (
        mlflow.start_run(run_name="outer"),
        pytest.raises(InputError, match="already active"),
        training_run([world.pinned], home=world.home, run_name="inner"),
    ):
        pass
